"""Saving a file: its content in the blob store, then its row. Uploads and files a run makes
(code_interpreter's outputs, purpose ``assistants_output``) are saved the same way."""

from __future__ import annotations

from typing import BinaryIO

from assistd.ids import Prefix, new_id, now
from assistd.store.blobs import BlobStore
from assistd.store.database import Database
from assistd.store.repositories import FileRepository
from assistd.types import FileObject


async def save_file(
    database: Database,
    blobs: BlobStore,
    project_id: str,
    content: BinaryIO,
    *,
    filename: str,
    purpose: str,
    limit: int,
    expires_after_seconds: int | None = None,
) -> FileObject:
    """Stores ``content`` as a new file; ``TooLarge`` (nothing stored) beyond ``limit`` bytes."""
    file_id = new_id(Prefix.FILE)
    size = await blobs.save(file_id, content, limit=limit)
    created_at = now()
    row = {
        "id": file_id,
        "created_at": created_at,
        "bytes": size,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": created_at + expires_after_seconds if expires_after_seconds else None,
    }
    try:
        async with database.write() as conn:
            return await FileRepository(conn, project_id).insert(row)
    except BaseException:
        await blobs.delete(file_id)  # no content without its row
        raise

"""Files: upload, list, read, download, delete. The row says what a file is; the blob store holds its
content under the file's id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import BinaryIO

from sqlalchemy import ColumnElement, delete, false, or_

from assistd.errors import ContentTooLarge, NotFound
from assistd.ids import now
from assistd.protocol.files import FileCreate
from assistd.protocol.pagination import Page, PageRequest
from assistd.protocol.storable import string_problem
from assistd.services.scope import Scope
from assistd.store import tables
from assistd.store.blobs import BlobStore, TooLarge
from assistd.store.files import save_file
from assistd.store.repositories import FileRepository
from assistd.types import FileDeleted, FileObject

files = tables.files


def _not_expired() -> ColumnElement[bool]:
    return or_(files.c.expires_at.is_(None), files.c.expires_at > now())


class FileService:
    def __init__(self, scope: Scope, blobs: BlobStore, *, max_bytes: int) -> None:
        self.scope = scope
        self.blobs = blobs
        self.max_bytes = max_bytes

    async def create(self, content: BinaryIO, filename: str, request: FileCreate) -> FileObject:
        try:
            return await save_file(
                self.scope.database,
                self.blobs,
                self.scope.project_id,
                content,
                filename=filename,
                purpose=request.purpose,
                limit=self.max_bytes,
                expires_after_seconds=request.expires_after.seconds if request.expires_after else None,
            )
        except TooLarge:
            raise ContentTooLarge(
                f"File too large: this server accepts files of at most {self.max_bytes} bytes.", param="file"
            ) from None

    async def list(self, page: PageRequest, purpose: str | None) -> Page[FileObject]:
        where = [_not_expired()]
        if purpose is not None:
            # A purpose no file can have matches nothing, and is not sent: PostgreSQL cannot compare
            # with a string holding NUL.
            where.append(files.c.purpose == purpose if string_problem(purpose) is None else false())
        async with self.scope.database.read() as conn:
            return await FileRepository(conn, self.scope.project_id).page(page, *where)

    async def get(self, file_id: str) -> FileObject:
        async with self.scope.database.read() as conn:
            return await FileRepository(conn, self.scope.project_id).require(file_id, _not_expired())

    async def content(self, file_id: str) -> tuple[FileObject, AsyncIterator[bytes]]:
        found = await self.get(file_id)
        return found, self.blobs.read(file_id)

    async def delete(self, file_id: str) -> FileDeleted:
        """Deletes the file, and takes it (with its chunks) out of every vector store."""
        project = self.scope.project_id
        async with self.scope.database.write() as conn:
            deleted = await FileRepository(conn, project).delete(file_id)
            if not deleted:
                raise NotFound("file", file_id)
            chunks, store_files = tables.vector_store_chunks, tables.vector_store_files
            await conn.execute(
                delete(chunks).where(chunks.c.project_id == project, chunks.c.file_id == file_id)
            )
            await conn.execute(
                delete(store_files).where(store_files.c.project_id == project, store_files.c.id == file_id)
            )
        # The row is gone first: a crash between the two leaves an orphan blob, never a row without one.
        await self.blobs.delete(file_id)
        return FileDeleted(id=file_id, object="file", deleted=True)

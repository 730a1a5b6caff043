"""The indexer: turns files added to vector stores into searchable chunks, in the background.

For each file ``in_progress`` in a store: read its content, extract the text, cut it into chunks by
tokens (the file's chunking strategy), embed them as passages, then, in one transaction, write the
chunks and move the file to ``completed`` only if it is still ``in_progress`` (a cancelled or removed
file keeps nothing). A file that cannot be read becomes ``failed`` with a ``last_error`` that says why;
the store and its other files are not affected. Work left by a stopped process is found again at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from assistd.backends.embeddings import EmbeddingBackend, pack_float32
from assistd.retrieval.chunking import Chunk, chunk_text
from assistd.retrieval.extract import ExtractionError, extract_text
from assistd.store import tables
from assistd.store.blobs import BlobStore
from assistd.store.database import Database
from assistd.store.repositories import VectorStoreRepository

logger = logging.getLogger("assistd.indexer")

files = tables.files
store_files = tables.vector_store_files
chunks = tables.vector_store_chunks
stores = tables.vector_stores


@dataclass(frozen=True, slots=True)
class Job:
    project_id: str
    vector_store_id: str
    file_id: str


class Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Indexer:
    def __init__(
        self, database: Database, blobs: BlobStore, embeddings: EmbeddingBackend, *, concurrency: int = 1
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.embeddings = embeddings
        self.concurrency = concurrency
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, project_id: str, vector_store_id: str, file_id: str) -> None:
        self._queue.put_nowait(Job(project_id, vector_store_id, file_id))

    async def start(self) -> None:
        """Starts the workers, after queueing the files a stopped process left in progress."""
        async with self.database.read() as conn:
            rows = await conn.execute(
                select(store_files.c.project_id, store_files.c.vector_store_id, store_files.c.id)
                .where(store_files.c.status == "in_progress")
                .order_by(store_files.c.seq)
            )
            for row in rows:
                self.submit(row.project_id, row.vector_store_id, row.id)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"assistd-indexer-{n}") for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self.index(job)
            except Exception:
                logger.exception("indexing %s in %s failed", job.file_id, job.vector_store_id)
                await self._fail(job, "server_error", "The server had an error while processing the file.")

    async def index(self, job: Job) -> None:
        settings = await self._pending(job)
        if settings is None:
            return  # cancelled or removed meanwhile
        filename, static = settings
        try:
            text, pieces = await self._chunks(job.file_id, filename, static)
        except Failed as failure:
            await self._fail(job, failure.code, failure.message)
            return
        embedded = await self.embeddings.embed([piece.text for piece in pieces], kind="passage")
        await self._store(job, text, pieces, embedded.vectors)

    async def _pending(self, job: Job) -> tuple[str, dict[str, int]] | None:
        async with self.database.read() as conn:
            row = (
                await conn.execute(
                    select(store_files.c.chunking_strategy, files.c.filename)
                    .select_from(store_files.outerjoin(files, files.c.id == store_files.c.id))
                    .where(
                        store_files.c.vector_store_id == job.vector_store_id,
                        store_files.c.id == job.file_id,
                        store_files.c.status == "in_progress",
                    )
                )
            ).first()
        if row is None:
            return None
        if row.filename is None:
            await self._fail(job, "invalid_file", "The file was deleted before it could be processed.")
            return None
        return row.filename, row.chunking_strategy["static"]

    async def _chunks(self, file_id: str, filename: str, static: dict[str, int]) -> tuple[str, list[Chunk]]:
        with tempfile.TemporaryDirectory(prefix="assistd-index-") as folder:
            path = Path(folder) / "content"
            with path.open("wb") as sink:
                try:
                    async for part in self.blobs.read(file_id):
                        sink.write(part)
                except FileNotFoundError:
                    raise Failed("invalid_file", "The file's content is missing.") from None
            try:
                text = await asyncio.to_thread(extract_text, path, filename)
            except ExtractionError as error:
                raise Failed(error.code, error.message) from None
        pieces = await asyncio.to_thread(
            chunk_text,
            text,
            max_tokens=static["max_chunk_size_tokens"],
            overlap_tokens=static["chunk_overlap_tokens"],
        )
        if not pieces:
            raise Failed("invalid_file", "The file contains no text to search.")
        return text, pieces

    async def _store(self, job: Job, text: str, pieces: list[Chunk], vectors: list[list[float]]) -> None:
        usage = sum(len(piece.text.encode()) for piece in pieces) + sum(len(v) * 4 for v in vectors)
        async with self.database.write() as conn:
            done = await conn.execute(
                update(store_files)
                .where(
                    store_files.c.vector_store_id == job.vector_store_id,
                    store_files.c.id == job.file_id,
                    store_files.c.status == "in_progress",
                )
                .values(status="completed", usage_bytes=usage, last_error=None, content=text)
            )
            if not done.rowcount:
                return  # cancelled or removed while it was being processed: keep nothing
            await conn.execute(
                delete(chunks).where(
                    chunks.c.vector_store_id == job.vector_store_id, chunks.c.file_id == job.file_id
                )
            )
            rows = [_chunk_row(job, piece, vector) for piece, vector in zip(pieces, vectors, strict=True)]
            await conn.execute(insert(chunks), rows)
            await VectorStoreRepository(conn, job.project_id).touch(job.vector_store_id)

    async def _fail(self, job: Job, code: str, message: str) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                update(store_files)
                .where(
                    store_files.c.vector_store_id == job.vector_store_id,
                    store_files.c.id == job.file_id,
                    store_files.c.status == "in_progress",
                )
                .values(status="failed", last_error={"code": code, "message": message})
            )


def _chunk_row(job: Job, piece: Chunk, vector: list[float]) -> dict[str, Any]:
    return {
        "project_id": job.project_id,
        "vector_store_id": job.vector_store_id,
        "file_id": job.file_id,
        "chunk_index": piece.index,
        "text": piece.text,
        "start_offset": piece.start,
        "end_offset": piece.end,
        "tokens": piece.tokens,
        "embedding": pack_float32(vector),
    }

"""Vector stores, the files in them, and file batches.

A file added to a store is a ``vector_store_files`` row ``in_progress``; the indexer (see
``retrieval/indexer.py``) extracts, chunks and embeds it in the background and moves it to
``completed`` or ``failed``. A store's and a batch's counts and status are computed from their files
whenever they are read, so they are never out of step.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.backends.embeddings import EmbeddingBackend
from assistd.errors import InvalidRequest, NotFound
from assistd.ids import Prefix, new_id, now
from assistd.protocol.common import ChunkingStrategy
from assistd.protocol.pagination import Page, PageRequest
from assistd.protocol.vector_stores import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileModify,
    VectorStoreModify,
    VectorStoreSearch,
    store_expires_at,
    stored_chunking,
)
from assistd.retrieval.search import Hit, search
from assistd.services.scope import Scope
from assistd.store import tables
from assistd.store.repositories import (
    FileBatchRepository,
    VectorStoreFileRepository,
    VectorStoreRepository,
)
from assistd.types import (
    VectorStore,
    VectorStoreDeleted,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)

stores = tables.vector_stores
store_files = tables.vector_store_files
chunks = tables.vector_store_chunks

# Called with (project_id, vector_store_id, file_id) for every file to index, after its row is committed.
IndexRequest = Callable[[str, str, str], None]


class VectorStoreService:
    def __init__(self, scope: Scope, index: IndexRequest, embeddings: EmbeddingBackend) -> None:
        self.scope = scope
        self.index = index
        self.embeddings = embeddings

    # -- stores ------------------------------------------------------------------------------------

    async def create(self, request: VectorStoreCreate) -> VectorStore:
        async with self.scope.database.write() as conn:
            store_id, added = await self.insert(conn, request)
            store = await self._store(conn, store_id)
        self.index_files(store_id, added)
        return store

    async def insert(
        self, conn: AsyncConnection, request: VectorStoreCreate, *, param: str = "file_ids"
    ) -> tuple[str, builtins.list[str]]:
        """Writes a new store with its files within the caller's transaction, so that a store made for
        another object goes away with it if that transaction fails. Returns the store's id and the files
        to pass to ``index_files`` once the transaction has committed (``param`` names ``file_ids``)."""
        store_id, clock = new_id(Prefix.VECTOR_STORE), now()
        await VectorStoreRepository(conn, self.scope.project_id).insert(
            {
                "id": store_id,
                "created_at": clock,
                "name": request.name or "",
                "description": request.description,
                "metadata": request.metadata or {},
                "expires_after": request.expires_after.model_dump() if request.expires_after else None,
                "expires_at": store_expires_at(request.expires_after, clock),
                "last_active_at": clock,
            }
        )
        added = await self._add_files(
            conn,
            store_id,
            [(file_id, request.chunking_strategy, None) for file_id in request.file_ids],
            param=param,
        )
        return store_id, added

    async def get(self, store_id: str) -> VectorStore:
        async with self.scope.database.read() as conn:
            return await self._store(conn, store_id)

    async def modify(self, store_id: str, request: VectorStoreModify) -> VectorStore:
        async with self.scope.database.write() as conn:
            current = await self._store(conn, store_id)
            changes: dict[str, Any] = {}
            if "name" in request.model_fields_set:
                changes["name"] = request.name or ""
            if "metadata" in request.model_fields_set:
                changes["metadata"] = request.metadata or {}
            if "expires_after" in request.model_fields_set:
                after = request.expires_after
                changes["expires_after"] = after.model_dump() if after else None
                changes["expires_at"] = store_expires_at(after, current.last_active_at or current.created_at)
            if changes:
                await VectorStoreRepository(conn, self.scope.project_id).update(store_id, changes)
            return await self._store(conn, store_id)

    async def delete(self, store_id: str) -> VectorStoreDeleted:
        project = self.scope.project_id
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            for table in (chunks, store_files, tables.vector_store_file_batches):
                await conn.execute(
                    delete(table).where(table.c.project_id == project, table.c.vector_store_id == store_id)
                )
            await VectorStoreRepository(conn, project).delete(store_id)
        return VectorStoreDeleted(id=store_id, object="vector_store.deleted", deleted=True)

    async def list(self, page: PageRequest) -> Page[VectorStore]:
        async with self.scope.database.read() as conn:
            return await VectorStoreRepository(conn, self.scope.project_id).page(page)

    async def search(self, store_id: str, request: VectorStoreSearch) -> builtins.list[Hit]:
        queries = [request.query] if isinstance(request.query, str) else list(request.query)
        embedded = await self.embeddings.embed(queries, kind="query")
        ranking = request.ranking_options
        async with self.scope.database.read() as conn:
            await self._store(conn, store_id)
            return await search(
                conn,
                self.scope.project_id,
                [store_id],
                embedded.vectors,
                texts=queries,
                limit=request.max_num_results,
                score_threshold=(ranking.score_threshold or 0.0) if ranking else 0.0,
                filters=request.filters.model_dump() if request.filters else None,
            )

    # -- files -------------------------------------------------------------------------------------

    async def add_file(self, store_id: str, request: VectorStoreFileCreate) -> VectorStoreFile:
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            added = await self._add_files(
                conn, store_id, [(request.file_id, request.chunking_strategy, request.attributes)], "file_id"
            )
            found = await self._file(conn, store_id, request.file_id)
        self.index_files(store_id, added)
        return found

    async def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        async with self.scope.database.read() as conn:
            await self._store(conn, store_id)
            return await self._file(conn, store_id, file_id)

    async def modify_file(
        self, store_id: str, file_id: str, request: VectorStoreFileModify
    ) -> VectorStoreFile:
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            updated = await VectorStoreFileRepository(conn, self.scope.project_id).update(
                file_id, {"attributes": request.attributes or {}}, store_files.c.vector_store_id == store_id
            )
        if updated is None:
            raise NotFound("vector store file", file_id)
        return updated

    async def remove_file(self, store_id: str, file_id: str) -> VectorStoreFileDeleted:
        """Takes the file out of the store (its chunks too); the file itself stays."""
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            removed = await VectorStoreFileRepository(conn, self.scope.project_id).delete(
                file_id, parent_id=store_id
            )
            if not removed:
                raise NotFound("vector store file", file_id)
            await conn.execute(
                delete(chunks).where(chunks.c.vector_store_id == store_id, chunks.c.file_id == file_id)
            )
        return VectorStoreFileDeleted(id=file_id, object="vector_store.file.deleted", deleted=True)

    async def list_files(
        self, store_id: str, page: PageRequest, status: str | None, batch_id: str | None = None
    ) -> Page[VectorStoreFile]:
        where = [store_files.c.vector_store_id == store_id]
        if status is not None:
            where.append(store_files.c.status == status)
        if batch_id is not None:
            where.append(store_files.c.batch_id == batch_id)
        async with self.scope.database.read() as conn:
            await self._store(conn, store_id)
            if batch_id is not None:
                await self._batch(conn, store_id, batch_id)
            return await VectorStoreFileRepository(conn, self.scope.project_id).page(page, *where)

    async def file_content(self, store_id: str, file_id: str) -> str:
        """The file's extracted text ("" until it is indexed)."""
        async with self.scope.database.read() as conn:
            await self._store(conn, store_id)
            await self._file(conn, store_id, file_id)
            text = await conn.scalar(
                select(store_files.c.content).where(
                    store_files.c.vector_store_id == store_id, store_files.c.id == file_id
                )
            )
        return text or ""

    # -- batches -----------------------------------------------------------------------------------

    async def create_batch(self, store_id: str, request: FileBatchCreate) -> VectorStoreFileBatch:
        batch_id = new_id(Prefix.FILE_BATCH)
        if request.files is not None:
            # With per-file entries, the batch-wide settings are ignored (the spec's rule).
            wanted = [(item.file_id, item.chunking_strategy, item.attributes) for item in request.files]
            param = "files"
        else:
            wanted = [
                (file_id, request.chunking_strategy, request.attributes) for file_id in request.file_ids or []
            ]
            param = "file_ids"
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            await FileBatchRepository(conn, self.scope.project_id).insert(
                {"id": batch_id, "created_at": now(), "vector_store_id": store_id, "cancelled": False}
            )
            added = await self._add_files(conn, store_id, wanted, param, batch_id=batch_id)
            batch = await self._batch(conn, store_id, batch_id)
        self.index_files(store_id, added)
        return batch

    async def get_batch(self, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        async with self.scope.database.read() as conn:
            await self._store(conn, store_id)
            return await self._batch(conn, store_id, batch_id)

    async def cancel_batch(self, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        """Files of the batch not indexed yet are cancelled; the indexer drops its work on them."""
        async with self.scope.database.write() as conn:
            await self._store(conn, store_id)
            await self._batch(conn, store_id, batch_id)
            await FileBatchRepository(conn, self.scope.project_id).update(batch_id, {"cancelled": True})
            await conn.execute(
                update(store_files)
                .where(store_files.c.batch_id == batch_id, store_files.c.status == "in_progress")
                .values(status="cancelled")
            )
            return await self._batch(conn, store_id, batch_id)

    # -- helpers -----------------------------------------------------------------------------------

    async def _store(self, conn: AsyncConnection, store_id: str) -> VectorStore:
        return await VectorStoreRepository(conn, self.scope.project_id).require(store_id)

    async def _file(self, conn: AsyncConnection, store_id: str, file_id: str) -> VectorStoreFile:
        return await VectorStoreFileRepository(conn, self.scope.project_id).require(
            file_id, parent_id=store_id
        )

    async def _batch(self, conn: AsyncConnection, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        return await FileBatchRepository(conn, self.scope.project_id).require(batch_id, parent_id=store_id)

    async def _add_files(
        self,
        conn: AsyncConnection,
        store_id: str,
        wanted: Sequence[tuple[str, ChunkingStrategy | None, dict[str, Any] | None]],
        param: str,
        *,
        batch_id: str | None = None,
    ) -> builtins.list[str]:
        """Rows ``in_progress`` for the files not in the store yet (adding a file twice is a no-op);
        the ids to index. Every file must exist, else nothing is added."""
        ids = [file_id for file_id, _, _ in wanted]
        files = tables.files
        known = set(
            (
                await conn.scalars(
                    select(files.c.id).where(files.c.project_id == self.scope.project_id, files.c.id.in_(ids))
                )
            ).all()
        )
        present = set(
            (
                await conn.scalars(
                    select(store_files.c.id).where(
                        store_files.c.vector_store_id == store_id,
                        store_files.c.id.in_(ids),
                    )
                )
            ).all()
        )
        rows: builtins.list[dict[str, Any]] = []
        for position, (file_id, strategy, attributes) in enumerate(wanted):
            if file_id not in known:
                where = {"file_id": "file_id", "files": f"files[{position}].file_id"}.get(
                    param, f"{param}[{position}]"
                )
                raise InvalidRequest(f"No file found with id '{file_id}'.", param=where)
            if file_id in present:
                continue
            present.add(file_id)
            rows.append(
                {
                    "id": file_id,
                    "vector_store_id": store_id,
                    "batch_id": batch_id,
                    "created_at": now(),
                    "status": "in_progress",
                    "usage_bytes": 0,
                    "last_error": None,
                    "chunking_strategy": stored_chunking(strategy),
                    "attributes": attributes or {},
                }
            )
        return await VectorStoreFileRepository(conn, self.scope.project_id).insert_missing(
            rows, unique=("vector_store_id", "id")
        )

    async def add_files_within(
        self, conn: AsyncConnection, store_id: str, file_ids: Sequence[str], *, param: str
    ) -> builtins.list[str]:
        """Adds existing files (auto chunking) to an existing store within the caller's transaction;
        returns the ids to pass to ``index_files`` once it has committed."""
        return await self._add_files(conn, store_id, [(file_id, None, None) for file_id in file_ids], param)

    def index_files(self, store_id: str, file_ids: builtins.list[str]) -> None:
        """Hands files added to a store to the indexer; only after their rows are committed, since the
        indexer reads them from the database."""
        for file_id in file_ids:
            self.index(self.scope.project_id, store_id, file_id)

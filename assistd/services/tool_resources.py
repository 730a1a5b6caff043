"""Tool resources and message attachments: the ids they name, the vector stores they make, and the
thread's vector store that file_search attachments go to.

Everything is written within the caller's write transaction, so an assistant or thread, its messages and
any vector store made for them are committed together or not at all. Files added to stores are handed to
the indexer only after that transaction has committed: the indexer reads them from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import InvalidRequest
from assistd.ids import now
from assistd.protocol.common import FileSearchCreateResources, ToolResources, VectorStoreHelper
from assistd.protocol.messages import MessageCreate
from assistd.protocol.vector_stores import StoreExpiresAfter, VectorStoreCreate
from assistd.services.common import dump_request
from assistd.services.vector_stores import VectorStoreService
from assistd.store import tables
from assistd.store.repositories import ThreadRepository

CODE_INTERPRETER_MAX_FILES = 20  # the spec's limit of tool_resources.code_interpreter.file_ids

# The stores OpenAI made for threads (the tool_resources helper, file_search attachments) expired seven
# days after their last activity; a store made for an assistant never expires.
THREAD_STORE_EXPIRY = StoreExpiresAfter(anchor="last_active_at", days=7)

# A message of a request, with the path of its fields in the request body: "" for the body of
# messages.create, "messages[2]." for the third message of a new thread.
PlacedMessage = tuple[str, MessageCreate]


def placed(param: str, messages: Sequence[MessageCreate] | None) -> list[PlacedMessage]:
    """The messages of a list at ``param`` of the request body."""
    return [(f"{param}[{index}].", message) for index, message in enumerate(messages or [])]


class ResourceWriter:
    """Writes tool resources and attachments within one transaction (see ``resource_transaction``)."""

    def __init__(self, conn: AsyncConnection, stores: VectorStoreService) -> None:
        self.conn = conn
        self.stores = stores
        self.project_id = stores.scope.project_id
        self._to_index: list[tuple[str, list[str]]] = []

    async def tool_resources(
        self,
        value: ToolResources | None,
        *,
        param: str = "tool_resources",
        store_expiry: StoreExpiresAfter | None = None,
    ) -> dict[str, Any]:
        """The stored form of ``value`` (sent at ``param``), once every id it names is known. The vector
        store helper becomes a new store, with ``store_expiry``, and only its id is kept."""
        if value is None:
            return {}
        stored = dump_request(value)
        files = value.code_interpreter.file_ids if value.code_interpreter else []
        await self._require(
            tables.files,
            "file",
            [(f"{param}.code_interpreter.file_ids[{index}]", file_id) for index, file_id in enumerate(files)],
        )
        search = value.file_search
        if search is None:
            return stored
        await self._require(
            tables.vector_stores,
            "vector store",
            [
                (f"{param}.file_search.vector_store_ids[{index}]", store_id)
                for index, store_id in enumerate(search.vector_store_ids or [])
            ],
        )
        if isinstance(search, FileSearchCreateResources) and search.vector_stores is not None:
            made = [
                await self._make_store(helper, f"{param}.file_search.vector_stores[{index}]", store_expiry)
                for index, helper in enumerate(search.vector_stores)
            ]
            stored["file_search"] = {"vector_store_ids": made}
        return stored

    async def attach(self, resources: dict[str, Any], messages: Sequence[PlacedMessage]) -> dict[str, Any]:
        """A thread's stored tool resources once the attachments of ``messages`` are added to it:
        file_search files go to the thread's vector store (made when it has none), code_interpreter
        files join its ``code_interpreter.file_ids``. Every attached file must exist."""
        attached = [
            (f"{prefix}attachments[{index}]", attachment)
            for prefix, message in messages
            for index, attachment in enumerate(message.attachments or [])
        ]
        if not attached:
            return resources
        await self._require(tables.files, "file", [(f"{at}.file_id", item.file_id) for at, item in attached])
        updated = dict(resources)
        searched = [item.file_id for _, item in attached if any(t.type == "file_search" for t in item.tools)]
        if searched:
            store_id = await self._thread_store(resources)
            # The files were found above: the param for a missing one is never used.
            added = await self.stores.add_files_within(self.conn, store_id, searched, param="attachments")
            self._to_index.append((store_id, added))
            updated["file_search"] = {"vector_store_ids": [store_id]}
        coded = [
            (at, item.file_id)
            for at, item in attached
            if any(t.type == "code_interpreter" for t in item.tools)
        ]
        if coded:
            file_ids = list((resources.get("code_interpreter") or {}).get("file_ids") or [])
            for at, file_id in coded:
                if file_id in file_ids:
                    continue
                if len(file_ids) >= CODE_INTERPRETER_MAX_FILES:
                    raise InvalidRequest(
                        f"Cannot attach '{file_id}' for code_interpreter: a thread can have at most "
                        f"{CODE_INTERPRETER_MAX_FILES} code_interpreter files.",
                        param=at,
                    )
                file_ids.append(file_id)
            updated["code_interpreter"] = {"file_ids": file_ids}
        return updated

    async def attach_to_thread(self, thread_id: str, messages: Sequence[PlacedMessage]) -> None:
        """``attach`` for messages added to an existing thread, whose row the caller has locked (two
        requests must not both make a store for it, or drop each other's files)."""
        if not any(message.attachments for _, message in messages):
            return
        threads = tables.threads
        current = await self.conn.scalar(
            select(threads.c.tool_resources).where(
                threads.c.project_id == self.project_id, threads.c.id == thread_id
            )
        )
        resources = current or {}
        updated = await self.attach(resources, messages)
        if updated != resources:
            await ThreadRepository(self.conn, self.project_id).update(thread_id, {"tool_resources": updated})

    def index_added(self) -> None:
        """Hands every file added to a store to the indexer; only once the transaction has committed."""
        for store_id, file_ids in self._to_index:
            self.stores.index_files(store_id, file_ids)
        self._to_index.clear()

    async def _make_store(
        self, helper: VectorStoreHelper, param: str, expiry: StoreExpiresAfter | None
    ) -> str:
        # Built without validation: the helper was validated as the helper, whose file_ids are not
        # limited to the 500 of POST /vector_stores.
        request = VectorStoreCreate.model_construct(
            file_ids=helper.file_ids,
            chunking_strategy=helper.chunking_strategy,
            metadata=helper.metadata,
            expires_after=expiry,
        )
        store_id, added = await self.stores.insert(self.conn, request, param=f"{param}.file_ids")
        self._to_index.append((store_id, added))
        return store_id

    async def _thread_store(self, resources: dict[str, Any]) -> str:
        """The thread's vector store; a new one if it has none, or if the one it names was deleted or
        has expired (a run would fail on it)."""
        named = (resources.get("file_search") or {}).get("vector_store_ids") or []
        stores = tables.vector_stores
        if named:
            live = await self.conn.scalar(
                select(stores.c.id).where(
                    stores.c.project_id == self.project_id,
                    stores.c.id == named[0],
                    or_(stores.c.expires_at.is_(None), stores.c.expires_at > now()),
                )
            )
            if live is not None:
                return str(live)
        store_id, _ = await self.stores.insert(
            self.conn, VectorStoreCreate(expires_after=THREAD_STORE_EXPIRY)
        )
        return store_id

    async def _require(self, table: Table, kind: str, references: Sequence[tuple[str, str]]) -> None:
        """Every id (with the param it was sent at) names an object of the project: else a 400 naming
        the first that does not."""
        if not references:
            return
        found = await self._found(table, [object_id for _, object_id in references])
        for param, object_id in references:
            if object_id not in found:
                raise InvalidRequest(f"No {kind} found with id '{object_id}'.", param=param)

    async def _found(self, table: Table, ids: Sequence[str]) -> set[str]:
        rows = await self.conn.scalars(
            select(table.c.id).where(table.c.project_id == self.project_id, table.c.id.in_(sorted(set(ids))))
        )
        return set(rows.all())


@asynccontextmanager
async def resource_transaction(stores: VectorStoreService) -> AsyncIterator[ResourceWriter]:
    """A write transaction of the stores' project with a ``ResourceWriter`` on it; the files it added to
    stores are indexed once it has committed (never if it failed)."""
    async with stores.scope.database.write() as conn:
        writer = ResourceWriter(conn, stores)
        yield writer
    writer.index_added()

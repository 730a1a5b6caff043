"""Threads: create (with initial messages), read, modify, delete."""

from __future__ import annotations

from typing import Any

from assistd.errors import NotFound
from assistd.ids import Prefix, new_id, now
from assistd.protocol.threads import ThreadCreate, ThreadModify
from assistd.sandbox import CodeSandbox
from assistd.services.messages import new_message_row
from assistd.services.scope import Scope
from assistd.services.thread_guard import lock_for_deletion
from assistd.services.tool_resources import (
    THREAD_STORE_EXPIRY,
    ResourceWriter,
    placed,
    resource_transaction,
)
from assistd.services.vector_stores import VectorStoreService
from assistd.store import run_events, tables
from assistd.store.repositories import (
    MessageRepository,
    RunRepository,
    RunStepRepository,
    ThreadRepository,
)
from assistd.types import Thread, ThreadDeleted


async def insert_thread(
    writer: ResourceWriter,
    request: ThreadCreate,
    *,
    resources_param: str = "tool_resources",
    messages_param: str = "messages",
) -> Thread:
    """Write a new thread and its initial messages within the writer's transaction. The params are
    where the request sent the thread's tool resources and messages (for errors that name them)."""
    created_at = now()
    thread_id = new_id(Prefix.THREAD)
    resources = await writer.tool_resources(
        request.tool_resources, param=resources_param, store_expiry=THREAD_STORE_EXPIRY
    )
    values = {
        "id": thread_id,
        "created_at": created_at,
        "tool_resources": await writer.attach(resources, placed(messages_param, request.messages)),
        "metadata": request.metadata or {},
    }
    rows = [new_message_row(thread_id, message, created_at) for message in request.messages]
    thread = await ThreadRepository(writer.conn, writer.project_id).insert(values)
    await MessageRepository(writer.conn, writer.project_id).insert_many(rows)
    return thread


class ThreadService:
    def __init__(self, scope: Scope, stores: VectorStoreService, sandbox: CodeSandbox | None) -> None:
        self.scope = scope
        self.stores = stores
        self.sandbox = sandbox  # a deleted thread's code_interpreter session goes too

    async def create(self, request: ThreadCreate) -> Thread:
        # One transaction: the thread, all its first messages and the vector store made for them, or
        # nothing.
        async with resource_transaction(self.stores) as writer:
            return await insert_thread(writer, request)

    async def get(self, thread_id: str) -> Thread:
        async with self.scope.database.read() as conn:
            return await ThreadRepository(conn, self.scope.project_id).require(thread_id)

    async def modify(self, thread_id: str, request: ThreadModify) -> Thread:
        changes: dict[str, Any] = {}
        if "metadata" in request.model_fields_set:
            changes["metadata"] = request.metadata or {}
        async with resource_transaction(self.stores) as writer:
            if "tool_resources" in request.model_fields_set:
                changes["tool_resources"] = await writer.tool_resources(request.tool_resources)
            repository = ThreadRepository(writer.conn, self.scope.project_id)
            thread = (
                await repository.update(thread_id, changes) if changes else await repository.get(thread_id)
            )
        if thread is None:
            raise NotFound("thread", thread_id)
        return thread

    async def delete(self, thread_id: str) -> ThreadDeleted:
        project_id = self.scope.project_id
        async with self.scope.database.write() as conn:
            await lock_for_deletion(conn, project_id, thread_id)
            await run_events.forget_thread(conn, thread_id)
            await RunStepRepository(conn, project_id).delete_where(tables.run_steps.c.thread_id == thread_id)
            await RunRepository(conn, project_id).delete_where(tables.runs.c.thread_id == thread_id)
            await MessageRepository(conn, project_id).delete_where(tables.messages.c.thread_id == thread_id)
            await ThreadRepository(conn, project_id).delete(thread_id)
        if self.sandbox is not None:
            # Its kernel and the files of its /mnt/data, in this process (others reap theirs when idle).
            await self.sandbox.end_session(thread_id)
        return ThreadDeleted(id=thread_id, object="thread.deleted", deleted=True)

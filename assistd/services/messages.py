"""Messages of a thread: create, read, modify, delete, list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import false

from assistd.errors import NotFound
from assistd.ids import Prefix, is_plausible_id, new_id, now
from assistd.protocol.messages import ContentPart, MessageCreate, MessageModify, TextPart
from assistd.protocol.pagination import Page, PageRequest
from assistd.services.common import dump_request
from assistd.services.scope import Scope
from assistd.services.thread_guard import (
    lock_for_message_change,
    lock_for_new_message,
    missing_child,
    page_in_thread,
)
from assistd.services.tool_resources import resource_transaction
from assistd.services.vector_stores import VectorStoreService
from assistd.store import tables
from assistd.store.repositories import MessageRepository
from assistd.types import Message, MessageDeleted


def text_part(value: str, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": list(annotations)}}


def stored_content(content: str | list[ContentPart]) -> list[dict[str, Any]]:
    """Request content (a string or parts) as the response's content parts."""
    if isinstance(content, str):
        return [text_part(content)]
    # Image parts are stored with their defaults filled in ("detail": "auto"), as OpenAI returns them.
    return [
        text_part(part.text) if isinstance(part, TextPart) else part.model_dump(mode="json")
        for part in content
    ]


def new_message_row(thread_id: str, request: MessageCreate, created_at: int) -> dict[str, Any]:
    """The stored form of a message a client adds: complete at once, made by no run."""
    return {
        "id": new_id(Prefix.MESSAGE),
        "created_at": created_at,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created_at,
        "incomplete_at": None,
        "role": request.role,
        "content": stored_content(request.content),
        "assistant_id": None,
        "run_id": None,
        "attachments": [dump_request(attachment) for attachment in request.attachments or []],
        "metadata": request.metadata or {},
    }


class MessageService:
    def __init__(self, scope: Scope, stores: VectorStoreService) -> None:
        self.scope = scope
        self.stores = stores

    async def create(self, thread_id: str, request: MessageCreate) -> Message:
        async with resource_transaction(self.stores) as writer:
            await lock_for_new_message(writer.conn, self.scope.project_id, thread_id)
            # The body of messages.create is the message itself: its params have no prefix.
            await writer.attach_to_thread(thread_id, [("", request)])
            row = new_message_row(thread_id, request, now())
            return await MessageRepository(writer.conn, self.scope.project_id).insert(row)

    async def get(self, thread_id: str, message_id: str) -> Message:
        async with self.scope.database.read() as conn:
            message = await MessageRepository(conn, self.scope.project_id).get(
                message_id, parent_id=thread_id
            )
            if message is None:
                raise await missing_child(conn, self.scope.project_id, thread_id, "message", message_id)
        return message

    async def modify(self, thread_id: str, message_id: str, request: MessageModify) -> Message:
        async with self.scope.database.write() as conn:
            await lock_for_message_change(conn, self.scope.project_id, thread_id)
            message = await MessageRepository(conn, self.scope.project_id).update(
                message_id, {"metadata": request.metadata or {}}, tables.messages.c.thread_id == thread_id
            )
        if message is None:
            raise NotFound("message", message_id)  # the lock found the thread: only the message is missing
        return message

    async def delete(self, thread_id: str, message_id: str) -> MessageDeleted:
        async with self.scope.database.write() as conn:
            await lock_for_message_change(conn, self.scope.project_id, thread_id)
            deleted = await MessageRepository(conn, self.scope.project_id).delete(
                message_id, parent_id=thread_id
            )
        if not deleted:
            raise NotFound("message", message_id)  # the lock found the thread: only the message is missing
        return MessageDeleted(id=message_id, object="thread.message.deleted", deleted=True)

    async def list(self, thread_id: str, page: PageRequest, run_id: str | None = None) -> Page[Message]:
        where = [tables.messages.c.thread_id == thread_id]
        if run_id is not None:
            # An id that cannot exist matches no message (and is not sent to the database).
            where.append(tables.messages.c.run_id == run_id if is_plausible_id(run_id) else false())
        async with self.scope.database.read() as conn:
            repository = MessageRepository(conn, self.scope.project_id)
            return await page_in_thread(
                conn, self.scope.project_id, thread_id, lambda: repository.page(page, *where)
            )

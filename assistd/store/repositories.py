"""The concrete repositories, one per stored resource."""

from __future__ import annotations

from assistd.store import tables
from assistd.store.repository import Repository
from assistd.types import Assistant, Message, Thread


class AssistantRepository(Repository[Assistant]):
    table = tables.assistants
    model = Assistant
    object_name = "assistant"
    kind = "assistant"
    columns = (
        "id",
        "created_at",
        "name",
        "description",
        "model",
        "instructions",
        "tools",
        "tool_resources",
        "metadata",
        "temperature",
        "top_p",
        "response_format",
        "reasoning_effort",
    )


class ThreadRepository(Repository[Thread]):
    table = tables.threads
    model = Thread
    object_name = "thread"
    kind = "thread"
    columns = ("id", "created_at", "tool_resources", "metadata")


class MessageRepository(Repository[Message]):
    table = tables.messages
    model = Message
    object_name = "thread.message"
    kind = "message"
    columns = (
        "id",
        "created_at",
        "thread_id",
        "status",
        "incomplete_details",
        "completed_at",
        "incomplete_at",
        "role",
        "content",
        "assistant_id",
        "run_id",
        "attachments",
        "metadata",
    )

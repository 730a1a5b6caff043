"""The concrete repositories, one per stored resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistd.store import tables
from assistd.store.repository import Repository
from assistd.types import Assistant, FileObject, Message, Run, RunStep, Thread


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


class RunRepository(Repository[Run]):
    table = tables.runs
    model = Run
    object_name = "thread.run"
    kind = "run"
    columns = (
        "id",
        "created_at",
        "thread_id",
        "assistant_id",
        "status",
        "required_action",
        "last_error",
        "expires_at",
        "started_at",
        "cancelled_at",
        "failed_at",
        "completed_at",
        "incomplete_details",
        "model",
        "instructions",
        "tools",
        "metadata",
        "usage",
        "temperature",
        "top_p",
        "max_prompt_tokens",
        "max_completion_tokens",
        "truncation_strategy",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
    )


class RunStepRepository(Repository[RunStep]):
    table = tables.run_steps
    model = RunStep
    object_name = "thread.run.step"
    kind = "run step"
    columns = (
        "id",
        "created_at",
        "run_id",
        "thread_id",
        "assistant_id",
        "type",
        "status",
        "step_details",
        "last_error",
        "expired_at",
        "cancelled_at",
        "failed_at",
        "completed_at",
        "metadata",
        "usage",
    )


class FileRepository(Repository[FileObject]):
    table = tables.files
    model = FileObject
    object_name = "file"
    kind = "file"
    columns = ("id", "created_at", "bytes", "filename", "purpose", "status", "expires_at")

    def to_object(self, row: Mapping[Any, Any]) -> FileObject:
        # Built without validation: uploads may have purpose "evals" (CreateFileRequest allows it), which
        # the File object's enum, in the spec and in the SDK, does not list.
        data = {name: row[name] for name in self.columns}
        # status_details is deprecated but, like every nullable field, sent as null.
        return FileObject.model_construct(object="file", status_details=None, **data)

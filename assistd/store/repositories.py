"""The concrete repositories, one per stored resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select, update

from assistd.ids import now
from assistd.protocol.vector_stores import StoreExpiresAfter, store_expires_at
from assistd.store import tables
from assistd.store.repository import Repository
from assistd.types import (
    Assistant,
    FileObject,
    Message,
    Run,
    RunStep,
    Thread,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)


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
    parent = "thread_id"
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
    parent = "thread_id"
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
    parent = "run_id"
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


def _file_counts(files: Any, group: Any) -> Any:
    """Per ``group`` (a store or a batch): how many of its files are in each status, and their bytes."""

    def count(status: str) -> Any:
        return func.coalesce(func.sum(case((files.c.status == status, 1), else_=0)), 0).label(status)

    return (
        select(
            group.label("owner"),
            count("in_progress"),
            count("completed"),
            count("failed"),
            count("cancelled"),
            func.count().label("total"),
            func.coalesce(func.sum(files.c.usage_bytes), 0).label("usage_bytes"),
        )
        .group_by(group)
        .subquery()
    )


COUNTS = ("in_progress", "completed", "failed", "cancelled", "total")


def _with_file_counts(
    repository: Repository[Any], group: Any, columns: list[Any], where: tuple[ColumnElement[bool], ...]
) -> Select[Any]:
    """The repository's rows, each with the counts and bytes of the vector store files that ``group``
    (a store's id, or a batch's) ties to it."""
    counts = _file_counts(tables.vector_store_files, group)
    table = repository.table
    return (
        select(*columns, *[counts.c[name] for name in COUNTS], counts.c.usage_bytes)
        .select_from(table.outerjoin(counts, counts.c.owner == table.c.id))
        .where(table.c.project_id == repository.project_scope(), *where)
    )


def _counts_of(row: Mapping[Any, Any]) -> dict[str, int]:
    # A row just inserted has no files yet, nor the columns that count them.
    return {name: int(row.get(name) or 0) for name in COUNTS}


class VectorStoreRepository(Repository[VectorStore]):
    """Stores with their file counts, bytes and status, computed from their files when read."""

    table = tables.vector_stores
    model = VectorStore
    object_name = "vector_store"
    kind = "vector store"
    columns = ("id", "created_at", "name", "metadata", "expires_after", "expires_at", "last_active_at")

    def _select(self, *where: ColumnElement[bool]) -> Select[Any]:
        columns = [self.table.c[name] for name in self.columns]
        return _with_file_counts(self, tables.vector_store_files.c.vector_store_id, columns, where)

    def to_object(self, row: Mapping[Any, Any]) -> VectorStore:
        counts = _counts_of(row)
        expires_at = row["expires_at"]
        if expires_at is not None and expires_at <= now():
            status = "expired"
        else:
            status = "in_progress" if counts["in_progress"] else "completed"
        fields = {name: row[name] for name in self.columns}
        if fields["expires_after"] is None:
            del fields["expires_after"]  # an object in the spec, not nullable: left out when unset
        return VectorStore.model_validate(
            {
                **fields,
                "object": "vector_store",
                "file_counts": counts,
                "usage_bytes": int(row.get("usage_bytes") or 0),
                "status": status,
            }
        )

    async def touch(self, store_id: str) -> None:
        """The store was active now (a file indexed, a run searched it): its expiry, which
        ``expires_after`` counts from the last activity, moves."""
        stores = self.table
        where = (stores.c.project_id == self.project_id, stores.c.id == store_id)
        policy = await self.conn.scalar(select(stores.c.expires_after).where(*where))
        clock = now()
        values: dict[str, Any] = {"last_active_at": clock}
        if policy:
            values["expires_at"] = store_expires_at(StoreExpiresAfter.model_validate(policy), clock)
        await self.conn.execute(update(stores).where(*where).values(**values))


class VectorStoreFileRepository(Repository[VectorStoreFile]):
    table = tables.vector_store_files
    model = VectorStoreFile
    object_name = "vector_store.file"
    kind = "vector store file"
    parent = "vector_store_id"
    columns = (
        "id",
        "created_at",
        "vector_store_id",
        "status",
        "usage_bytes",
        "last_error",
        "chunking_strategy",
        "attributes",
    )


class FileBatchRepository(Repository[VectorStoreFileBatch]):
    """Batches with the counts of their files; a batch is over when none of its files is in progress."""

    table = tables.vector_store_file_batches
    model = VectorStoreFileBatch
    object_name = "vector_store.files_batch"
    kind = "vector store file batch"
    parent = "vector_store_id"
    columns = ("id", "created_at", "vector_store_id", "cancelled")

    def _select(self, *where: ColumnElement[bool]) -> Select[Any]:
        columns: list[Any] = [self.table.c[name] for name in self.columns if name != "cancelled"]
        # Named apart from the count of cancelled files.
        columns.append(self.table.c.cancelled.label("batch_cancelled"))
        return _with_file_counts(self, tables.vector_store_files.c.batch_id, columns, where)

    def to_object(self, row: Mapping[Any, Any]) -> VectorStoreFileBatch:
        counts = _counts_of(row)
        if row.get("batch_cancelled"):
            status = "cancelled" if not counts["in_progress"] else "in_progress"
        elif counts["in_progress"]:
            status = "in_progress"
        elif counts["total"] and counts["failed"] == counts["total"]:
            status = "failed"
        else:
            status = "completed"
        return VectorStoreFileBatch.model_validate(
            {
                "id": row["id"],
                "created_at": row["created_at"],
                "vector_store_id": row["vector_store_id"],
                "object": "vector_store.files_batch",
                "file_counts": counts,
                "status": status,
            }
        )

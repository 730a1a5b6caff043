"""Guards of a thread's contents: the thread must exist, and while a run is active on it, the thread
takes no new messages or runs (the thread lock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import InvalidRequest, NotFound
from assistd.protocol.pagination import Page
from assistd.runs.states import ACTIVE
from assistd.store import tables
from assistd.store.repositories import ThreadRepository
from assistd.store.statements import once

T = TypeVar("T", bound=BaseModel)


async def require_thread(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    await ThreadRepository(conn, project_id).require(thread_id)


async def missing_child(
    conn: AsyncConnection, project_id: str, thread_id: str, kind: str, object_id: str
) -> NotFound:
    """The error for a thread's child that was not found: the thread's own 404 if it is missing too.
    Asked only after the lookup failed, so a found child costs no extra query."""
    await require_thread(conn, project_id, thread_id)
    return NotFound(kind, object_id)


async def page_in_thread(
    conn: AsyncConnection, project_id: str, thread_id: str, fetch: Callable[[], Awaitable[Page[T]]]
) -> Page[T]:
    """A page of a thread's children. Only when the page is empty or its cursor unknown is it worth a
    query to tell a missing thread (404) from an empty list: any item found proves the thread exists."""
    try:
        page = await fetch()
    except InvalidRequest:
        await require_thread(conn, project_id, thread_id)
        raise
    if not page.data:
        await require_thread(conn, project_id, thread_id)
    return page


async def lock_thread(conn: AsyncConnection, project_id: str, thread_id: str) -> str | None:
    """Hold the thread's row for the rest of the transaction and return its active run's id, if any.

    On PostgreSQL the row is locked FOR UPDATE; SQLite's write transactions are exclusive already. Either
    way two requests cannot both pass a check made on the answer. One query does both jobs.
    """
    statement = once("lock_thread", _lock_thread_statement)
    row = (await conn.execute(statement, {"in_project": project_id, "thread": thread_id})).first()
    if row is None:
        raise NotFound("thread", thread_id)
    return row.active_run_id  # type: ignore[no-any-return]


def _lock_thread_statement() -> Select[Any]:
    threads, runs = tables.threads, tables.runs
    project: BindParameter[str] = bindparam("in_project")
    thread: BindParameter[str] = bindparam("thread")
    active = (
        select(runs.c.id)
        .where(runs.c.project_id == project, runs.c.thread_id == thread, runs.c.status.in_(ACTIVE))
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(threads.c.id, active.label("active_run_id"))
        .where(threads.c.id == thread, threads.c.project_id == project)
        .with_for_update(of=threads)
    )


async def _lock_unless_active(conn: AsyncConnection, project_id: str, thread_id: str, refusal: str) -> None:
    """Lock the thread, or refuse with ``refusal`` (formatted with ``thread`` and ``run``) while a run
    is active on it."""
    run_id = await lock_thread(conn, project_id, thread_id)
    if run_id is not None:
        raise InvalidRequest(refusal.format(thread=thread_id, run=run_id))


async def lock_for_new_message(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    await _lock_unless_active(
        conn, project_id, thread_id, "Can't add messages to {thread} while a run {run} is active."
    )


async def lock_for_message_change(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    """Messages are the run's input: they may not change or go away while it runs."""
    await _lock_unless_active(
        conn, project_id, thread_id, "Can't modify messages in {thread} while a run {run} is active."
    )


async def lock_for_new_run(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    await _lock_unless_active(conn, project_id, thread_id, "Thread {thread} already has an active run {run}.")


async def lock_for_deletion(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    await _lock_unless_active(
        conn, project_id, thread_id, "Can't delete {thread} while a run {run} is active."
    )

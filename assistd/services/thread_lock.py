"""The thread lock: while a run is active on a thread, the thread takes no new messages or runs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import InvalidRequest, NotFound
from assistd.runs.states import ACTIVE
from assistd.store import tables


async def lock_thread(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    """Hold the thread's row for the rest of the transaction (PostgreSQL: FOR UPDATE; SQLite's write
    transactions are exclusive already), so two requests cannot both pass the checks below."""
    threads = tables.threads
    found = await conn.scalar(
        select(threads.c.id)
        .where(threads.c.id == thread_id, threads.c.project_id == project_id)
        .with_for_update()
    )
    if found is None:
        raise NotFound("thread", thread_id)


async def active_run_id(conn: AsyncConnection, project_id: str, thread_id: str) -> str | None:
    runs = tables.runs
    return await conn.scalar(
        select(runs.c.id)
        .where(runs.c.project_id == project_id, runs.c.thread_id == thread_id, runs.c.status.in_(ACTIVE))
        .limit(1)
    )


async def refuse_new_message(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    run_id = await active_run_id(conn, project_id, thread_id)
    if run_id is not None:
        raise InvalidRequest(f"Can't add messages to {thread_id} while a run {run_id} is active.")


async def refuse_new_run(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    run_id = await active_run_id(conn, project_id, thread_id)
    if run_id is not None:
        raise InvalidRequest(f"Thread {thread_id} already has an active run {run_id}.")


async def refuse_deletion(conn: AsyncConnection, project_id: str, thread_id: str) -> None:
    run_id = await active_run_id(conn, project_id, thread_id)
    if run_id is not None:
        raise InvalidRequest(f"Can't delete {thread_id} while a run {run_id} is active.")

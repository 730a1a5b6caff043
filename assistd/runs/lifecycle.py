"""Ending a run: the run, its open step and its open message change together, then their events go out.

Every way a run ends early (failure, cancellation, expiry, a worker that died) comes through
``finish_run``, wherever it is detected: in the executor, in the worker's sweeper, or on recovery. The
events are written with the change (``EventBus.writing``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.ids import now
from assistd.runs import states, step_view
from assistd.runs.events import EventBus
from assistd.store import tables
from assistd.store.database import Database
from assistd.store.repositories import MessageRepository, RunStepRepository
from assistd.types import Message, Run, RunStep

# How each way of ending marks the run's unfinished step and message.
_STEP_STATUS = {"failed": "failed", "cancelled": "cancelled", "expired": "expired"}
_STEP_STAMP = {"failed": "failed_at", "cancelled": "cancelled_at", "expired": "expired_at"}
_MESSAGE_REASON = {"failed": "run_failed", "cancelled": "run_cancelled", "expired": "run_expired"}


async def close_open_parts(
    conn: AsyncConnection,
    project_id: str,
    run_id: str,
    outcome: str,
    last_error: dict[str, Any] | None = None,
) -> tuple[list[Message], list[RunStep]]:
    """Mark the run's in-progress steps and messages as ended by ``outcome`` (failed, cancelled,
    expired); returns them as they are now."""
    steps_table, messages_table = tables.run_steps, tables.messages
    clock = now()
    step_ids = list(
        await conn.scalars(select(steps_table.c.id).where(_unfinished(steps_table, project_id, run_id)))
    )
    message_ids = list(
        await conn.scalars(select(messages_table.c.id).where(_unfinished(messages_table, project_id, run_id)))
    )
    step_values: dict[str, Any] = {"status": _STEP_STATUS[outcome], _STEP_STAMP[outcome]: clock}
    if outcome == "failed" and last_error is not None:
        # A step's last_error knows only these two codes.
        code = last_error["code"] if last_error["code"] == "rate_limit_exceeded" else "server_error"
        step_values["last_error"] = {"code": code, "message": last_error["message"]}
    if step_ids:
        await conn.execute(update(steps_table).where(steps_table.c.id.in_(step_ids)).values(**step_values))
    if message_ids:
        await conn.execute(
            update(messages_table)
            .where(messages_table.c.id.in_(message_ids))
            .values(
                status="incomplete",
                incomplete_at=clock,
                incomplete_details={"reason": _MESSAGE_REASON[outcome]},
            )
        )
    step_repository = RunStepRepository(conn, project_id)
    message_repository = MessageRepository(conn, project_id)
    closed_steps = [step for step_id in step_ids if (step := await step_repository.get(step_id))]
    closed_messages = [m for message_id in message_ids if (m := await message_repository.get(message_id))]
    return closed_messages, closed_steps


async def discard_unfinished(conn: AsyncConnection, project_id: str, run_id: str) -> None:
    """Remove the run's in-progress steps and messages: the unfinished work of a turn to be done again."""
    for table in (tables.run_steps, tables.messages):
        await conn.execute(delete(table).where(_unfinished(table, project_id, run_id)))


def _unfinished(table: Table, project_id: str, run_id: str) -> ColumnElement[bool]:
    """The run's steps or messages (of ``table``) still in progress."""
    return and_(table.c.project_id == project_id, table.c.run_id == run_id, table.c.status == "in_progress")


async def finish_run(
    database: Database,
    bus: EventBus,
    project_id: str,
    run_id: str,
    *,
    outcome: str,
    expect: Collection[str],
    last_error: dict[str, Any] | None = None,
) -> Run | None:
    """End the run early as ``outcome`` (failed, cancelled, expired) if its status is in ``expect``."""
    fields: dict[str, Any] = {}
    if last_error is not None:
        fields["last_error"] = last_error
    async with bus.writing(database, run_id) as (conn, outbox):
        run = await states.transition(conn, project_id, run_id, expect=expect, to=outcome, **fields)
        if run is None:
            return None
        messages, steps = await close_open_parts(conn, project_id, run_id, outcome, last_error)
        for message in messages:
            outbox.add("thread.message.incomplete", message)
        for step in steps:
            outbox.add(f"thread.run.step.{step.status}", step_view.wire_step(step, include_content=False))
        outbox.add(states.event_name(run), run)
    return run

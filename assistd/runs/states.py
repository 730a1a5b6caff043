"""The run state machine: the only code that changes a run's status.

queued ─► in_progress ─► completed | requires_action | incomplete | failed | expired
requires_action ─(tool outputs)─► queued;  queued | in_progress | requires_action ─(cancel)─► cancelling
cancelling ─► cancelled;  queued | requires_action ─(deadline)─► expired;  any active ─► failed

Every transition is a compare-and-set (``UPDATE ... WHERE status IN (expected)``): when a cancel, an
expiry and the worker race, exactly one wins and the others get ``None``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import bindparam, func
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.ids import now
from assistd.store import tables
from assistd.store.repositories import RunRepository
from assistd.types import Run

ACTIVE: Final = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})
# Every status, in the order a run may pass through them (for reports).
ALL: Final = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "completed",
    "incomplete",
    "failed",
    "cancelled",
    "expired",
)

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"in_progress", "cancelling", "expired", "failed"}),
    "in_progress": frozenset(
        {"completed", "requires_action", "incomplete", "failed", "cancelling", "expired"}
    ),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    "cancelling": frozenset({"cancelled", "failed"}),
}

# The timestamp a status stamps on the run when it is entered.
_STAMPS: Final = {
    "completed": "completed_at",
    "incomplete": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
}


class IllegalTransition(Exception):
    """A bug: code asked for a transition the state machine does not have."""


async def transition(
    conn: AsyncConnection,
    project_id: str,
    run_id: str,
    *,
    expect: Collection[str],
    to: str,
    **fields: Any,
) -> Run | None:
    """Move the run to ``to`` if its status is one of ``expect``; the new run, or None if it was not."""
    for status in expect:
        if to not in ALLOWED.get(status, frozenset()):
            raise IllegalTransition(f"{status} -> {to}")
    values: dict[str, Any] = {"status": to, **fields}
    parameters: dict[str, Any] = {"expect": sorted(expect)}
    if to == "in_progress":
        # A run resumed after tool outputs keeps the time it first started.
        values["started_at"] = func.coalesce(tables.runs.c.started_at, bindparam("started_now"))
        parameters["started_now"] = now()
    elif to in _STAMPS:
        values.setdefault(_STAMPS[to], now())
    if to != "requires_action":
        values.setdefault("required_action", None)
    if to in TERMINAL:
        # OpenAI reports no expiry time for a run that is over; nobody holds it any more.
        values.update(expires_at=None, lease_owner=None, lease_expires_at=None)
    # Every value comes as a parameter: the statement is built once per target status and set of columns.
    return await RunRepository(conn, project_id).update(
        run_id,
        values,
        tables.runs.c.status.in_(bindparam("expect", expanding=True)),
        shape=("transition", to),
        parameters=parameters,
    )


def event_name(run: Run) -> str:
    return f"thread.run.{run.status}"

"""The run queue: how workers claim runs. Above the project scope on purpose: a worker serves every
project, and scopes everything it does afterwards by the claimed run's project."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.ids import now
from assistd.store import tables
from assistd.store.statements import once

runs = tables.runs


@dataclass(frozen=True, slots=True)
class Claim:
    project_id: str
    run_id: str
    status: str  # the status the run had when it was claimed
    trace_parent: str | None = None  # the traceparent of the request that queued it, if traced


async def claim(
    conn: AsyncConnection, worker_id: str, lease_seconds: float, limit: int, *, leased_by_caller: set[str]
) -> list[Claim]:
    """Take up to ``limit`` runs that need a worker, oldest first: queued, cancelling, or in progress
    under a lease that lapsed (its worker died). Their status is left as it was; the lease is ours.

    The caller writes the lease itself, in the same transaction, of runs whose status it names in
    ``leased_by_caller`` (the worker's start of a queued run does, in the one statement that starts it).
    """
    statement = once("claim", _claimable)
    rows = list(await conn.execute(statement, {"clock": time.time(), "room": limit}))
    to_lease = [row.id for row in rows if row.status not in leased_by_caller]
    if to_lease:
        await conn.execute(
            update(runs).where(runs.c.id.in_(to_lease)).values(**lease(worker_id, lease_seconds))
        )
    return [Claim(row.project_id, row.id, row.status, row.trace_parent) for row in rows]


def _claimable() -> Select[Any]:
    """The runs a worker may claim at ``clock``, ``room`` at most, oldest first, locked."""
    clock: BindParameter[float] = bindparam("clock")
    free = or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < clock)
    wanted = or_(
        and_(runs.c.status.in_(("queued", "cancelling")), free),
        and_(runs.c.status == "in_progress", runs.c.lease_expires_at < clock),
    )
    return (
        select(runs.c.id, runs.c.project_id, runs.c.status, runs.c.trace_parent)
        .where(wanted)
        .order_by(runs.c.seq)
        .limit(bindparam("room"))
        # NO KEY UPDATE, not UPDATE: the event writer's KEY SHARE lock on a run does not wait for it.
        .with_for_update(skip_locked=True, key_share=True)
    )


def lease(worker_id: str, lease_seconds: float) -> dict[str, object]:
    """The columns that give a worker a run's lease from now."""
    return {"lease_owner": worker_id, "lease_expires_at": time.time() + lease_seconds}


async def renew_leases(
    conn: AsyncConnection, worker_id: str, run_ids: list[str], lease_seconds: float
) -> list[str]:
    """Extend the worker's leases on these runs; the ids of those being cancelled meanwhile."""
    if not run_ids:
        return []
    rows = await conn.execute(
        update(runs)
        .where(runs.c.id.in_(run_ids), runs.c.lease_owner == worker_id)
        .values(lease_expires_at=time.time() + lease_seconds)
        .returning(runs.c.id, runs.c.status)
    )
    return [row.id for row in rows if row.status == "cancelling"]


async def release(conn: AsyncConnection, worker_id: str, run_id: str) -> None:
    """Give up our lease on a run that no executor of ours works on any more. A run still in progress
    keeps it: its lease must lapse so that recovery finds it."""
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.lease_owner == worker_id, runs.c.status != "in_progress")
        .values(lease_owner=None, lease_expires_at=None)
    )


async def hand_back(conn: AsyncConnection, run_id: str) -> None:
    """Let the lease of a run in progress lapse now, so that the next claim takes it over."""
    await conn.execute(
        update(runs).where(runs.c.id == run_id, runs.c.status == "in_progress").values(lease_expires_at=0.0)
    )


async def overdue(conn: AsyncConnection, limit: int = 100) -> list[Claim]:
    """Runs past ``expires_at`` that no worker is executing: waiting in the queue or for tool outputs."""
    statement = (
        select(runs.c.id, runs.c.project_id, runs.c.status)
        .where(
            runs.c.status.in_(("queued", "requires_action")),
            runs.c.expires_at < now(),
            or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < time.time()),
        )
        .limit(limit)
    )
    return [Claim(row.project_id, row.id, row.status) for row in await conn.execute(statement)]


async def runs_by_status(conn: AsyncConnection) -> dict[str, int]:
    """How many runs of every project are in each status (statuses with none are absent)."""
    rows = await conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status))
    return {status: count for status, count in rows}

"""Stored run events (PostgreSQL): appending them in order, reading them back, forgetting old ones.

Each run's events are numbered 1, 2, ... (``seq``). Writers of one run's events take a transaction-level
advisory lock on the run first, so they number and commit one after another: a reader that sees event
``n`` sees every event before it, and may read "all after the last one I have" without gaps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import tables

events = tables.run_events
runs = tables.runs

# Channels of NOTIFY: a run has new events (payload: the run id); a run was queued (no payload); a
# run was cancelled (payload: the run id).
EVENTS_CHANNEL = "assistd_run_events"
WAKE_CHANNEL = "assistd_run_queued"
CANCEL_CHANNEL = "assistd_run_cancelled"

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:run_id, 0))")


READ_LIMIT = 1000  # events read at once


class NewEvent(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def detailed_data(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event: str
    data: str
    detailed_data: str | None


async def append(conn: AsyncConnection, run_id: str, new: Sequence[NewEvent]) -> int | None:
    """Store ``new`` after the run's events and tell listeners (at commit); the run's last event number
    before them, or None if the run no longer exists (its events are dropped)."""
    # A statement of its own: the next one's snapshot must be taken after the lock is granted.
    await conn.execute(_LOCK, {"run_id": run_id})
    last_seq = select(func.max(events.c.seq)).where(events.c.run_id == run_id).scalar_subquery()
    # No row lock on the run: the transaction that changes the run's status holds its row, and may be
    # the one waiting for these events to be written first.
    found = (await conn.execute(select(runs.c.id, last_seq).where(runs.c.id == run_id))).first()
    if found is None:
        return None
    last = int(found[1] or 0)
    if new:
        clock = time.time()
        await conn.execute(
            insert(events),
            [
                {
                    "run_id": run_id,
                    "seq": last + offset,
                    "event": item.event,
                    "data": item.data,
                    "detailed_data": item.detailed_data,
                    "created_at": clock,
                }
                for offset, item in enumerate(new, start=1)
            ],
        )
        await notify(conn, EVENTS_CHANNEL, run_id)
    return last


async def notify(conn: AsyncConnection, channel: str, payload: str = "") -> None:
    """Delivered when the transaction commits (and only then); repeats within it are sent once."""
    await conn.execute(select(func.pg_notify(channel, payload)))


async def read_after(
    conn: AsyncConnection, run_id: str, after: int, limit: int = READ_LIMIT
) -> list[StoredEvent]:
    rows = await conn.execute(
        select(events.c.seq, events.c.event, events.c.data, events.c.detailed_data)
        .where(events.c.run_id == run_id, events.c.seq > after)
        .order_by(events.c.seq)
        .limit(limit)
    )
    return [StoredEvent(row.seq, row.event, row.data, row.detailed_data) for row in rows]


async def last_seq(conn: AsyncConnection, run_id: str) -> int:
    return int(await conn.scalar(select(func.max(events.c.seq)).where(events.c.run_id == run_id)) or 0)


async def forget_thread(conn: AsyncConnection, thread_id: str) -> None:
    """The events of the thread's runs (before the runs themselves are deleted)."""
    await conn.execute(
        delete(events).where(events.c.run_id.in_(select(runs.c.id).where(runs.c.thread_id == thread_id)))
    )


async def forget_older_than(conn: AsyncConnection, seconds: float) -> int:
    result = await conn.execute(delete(events).where(events.c.created_at < time.time() - seconds))
    return result.rowcount or 0

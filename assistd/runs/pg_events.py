"""Run events across processes, on PostgreSQL: stored in ``run_events``, announced with NOTIFY.

Every event is a row; a stream on any node reads its run's rows in order (``seq``), woken by a NOTIFY
that names the run, so a client may stream from one node a run that a worker on another executes, and
resume a broken stream after the last event it got. Worker notices (a run was queued, a run was
cancelled) are NOTIFYs too.

Publishing stays cheap for the executor: ``publish`` only queues the event, and one task writes what
has queued up, all runs in one transaction (a streamed answer's many deltas become a few writes). The
events of a change of a run's status are written in the transaction of the change instead
(``EventBus.writing``), together with this process's queued events of the run, which come before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.runs.events import EventBus, Outbox, Published, RunEvent, Subscription, published
from assistd.store import run_events
from assistd.store.database import Database, create_engine
from assistd.store.listener import Listener, asyncpg_dsn

logger = logging.getLogger("assistd.events")

# Streams look at their runs' events this often even without a notification (insurance: a NOTIFY lost
# with a connection is otherwise noticed only at the reconnection).
RESYNC_SECONDS = 5.0
RETRY_SECONDS = 0.5


class StoredSubscription(Subscription):
    def __init__(self, bus: PgEventBus, run_id: str, *, detailed: bool, after: int | None) -> None:
        super().__init__(bus, run_id, detailed=detailed)
        self._pg_bus = bus
        # The last event delivered; None until the subscriber says where to start (start_after).
        self.after = after

    def start_after(self, seq: int) -> None:
        if self.after is None:
            self.after = seq
            self._pg_bus._fetch_soon(self.run_id)


class PgEventBus(EventBus):
    stores_events = True

    def __init__(self, database: Database, *, retention_seconds: float) -> None:
        super().__init__()
        self.database = database
        # The writer's own connection, outside the pool: status changes wait for the writer's batch while
        # they hold pooled connections, so with the pool exhausted by them a pooled writer would wait
        # for ever.
        self._writer_database = Database(
            create_engine(database.engine.url.render_as_string(hide_password=False), pool_size=1)
        )
        self.retention_seconds = retention_seconds
        self._stored_subscribers: defaultdict[str, set[StoredSubscription]] = defaultdict(set)
        # Published, not yet written: by run, in order. The writer takes it whole.
        self._pending: dict[str, list[Published]] = {}
        self._pending_changed = asyncio.Event()
        self._idle = asyncio.Event()  # nothing pending nor being written
        # The runs whose events the writer has taken and not yet committed (see ``write``).
        self._writing: set[str] = set()
        self._written = asyncio.Event()
        self._idle.set()
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._refetch: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener = Listener(
            asyncpg_dsn(database.engine.url.render_as_string(hide_password=False)),
            {
                run_events.EVENTS_CHANNEL: self._fetch_soon,
                run_events.WAKE_CHANNEL: lambda _payload: self._wake_workers(),
                run_events.CANCEL_CHANNEL: self._cancel_run,
            },
            on_connect=self._resync,
        )

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="assistd-event-writer"),
            asyncio.create_task(self._housekeeping(), name="assistd-event-housekeeping"),
        ]
        await self._listener.start()

    async def close(self) -> None:
        # What was published is written before the process goes (a stream elsewhere waits for it).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), 5.0)
        for task in [*self._tasks, *self._fetching.values()]:
            task.cancel()
        for task in [*self._tasks, *self._fetching.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._listener.close()
        await self._writer_database.close()

    # -- publishing --------------------------------------------------------------------------------

    def publish(
        self,
        run_id: str,
        event: str,
        payload: BaseModel | dict[str, Any],
        *,
        detailed: BaseModel | None = None,
    ) -> None:
        # Always stored: a stream on another node may be waiting for it.
        self._pending.setdefault(run_id, []).append(published(event, payload, detailed))
        self._idle.clear()
        self._pending_changed.set()

    async def write(self, conn: AsyncConnection, outbox: Outbox) -> None:
        # Events of this run the writer took and has not committed come before these: wait for them.
        # Only for them: waiting on the writer while this transaction holds locks the writer's batch
        # needs (another run's event lock, taken by an earlier outbox of this transaction) would be a
        # deadlock no database could see.
        while outbox.run_id in self._writing:
            await self._written.wait()
        earlier = self._pending.pop(outbox.run_id, [])
        last = await run_events.append(conn, outbox.run_id, [*earlier, *outbox.events])
        outbox.seq_before = (last or 0) + len(earlier)
        if outbox.wake:
            await run_events.notify(conn, run_events.WAKE_CHANNEL)
        if outbox.cancel:
            await run_events.notify(conn, run_events.CANCEL_CHANNEL, outbox.run_id)

    def send(self, outbox: Outbox) -> None:
        """Nothing: the transaction's NOTIFYs, delivered at its commit, told every process."""

    async def _write_loop(self) -> None:
        while True:
            await self._pending_changed.wait()
            self._pending_changed.clear()
            batch, self._pending = self._pending, {}
            self._writing = set(batch)
            self._written.clear()
            try:
                if batch:
                    async with self._writer_database.write() as conn:
                        # In a fixed order: two writers' event locks never wait on each other in a cycle.
                        for run_id in sorted(batch):
                            await run_events.append(conn, run_id, batch[run_id])
            except Exception:
                logger.exception("writing run events failed; retrying")
                # Back in front of what was published meanwhile, in order.
                for run_id, events in batch.items():
                    self._pending[run_id] = events + self._pending.get(run_id, [])
                await asyncio.sleep(RETRY_SECONDS)
                self._pending_changed.set()
            finally:
                self._writing = set()
                self._written.set()
            if not self._pending:
                self._idle.set()

    # -- subscribing -------------------------------------------------------------------------------

    def subscribe(self, run_id: str, *, detailed: bool = False, after: int | None = None) -> Subscription:
        subscription = StoredSubscription(self, run_id, detailed=detailed, after=after)
        self._stored_subscribers[run_id].add(subscription)
        if after is not None:
            self._fetch_soon(run_id)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._stored_subscribers.get(subscription.run_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._stored_subscribers[subscription.run_id]

    def _fetch_soon(self, run_id: str) -> None:
        """Deliver the run's new events to its subscribers here, if it has any."""
        if run_id not in self._stored_subscribers:
            return
        if run_id in self._fetching:
            self._refetch.add(run_id)  # the fetch under way may have read before these events
            return
        self._fetching[run_id] = asyncio.create_task(self._fetch(run_id), name=f"assistd-events-{run_id}")

    async def _fetch(self, run_id: str) -> None:
        try:
            while True:
                self._refetch.discard(run_id)
                waiting = [s for s in self._stored_subscribers.get(run_id, ()) if s.after is not None]
                if not waiting:
                    return
                async with self.database.read() as conn:
                    rows = await run_events.read_after(conn, run_id, min(s.after or 0 for s in waiting))
                for subscription in self._stored_subscribers.get(run_id, ()):
                    if subscription.after is None:
                        continue
                    for row in rows:
                        if row.seq > subscription.after:
                            data = row.data
                            if subscription.detailed and row.detailed_data is not None:
                                data = row.detailed_data
                            subscription.queue.put_nowait(RunEvent(row.event, data, row.seq))
                            subscription.after = row.seq
                if run_id not in self._refetch and len(rows) < run_events.READ_LIMIT:
                    return
        except Exception:
            logger.exception("reading the events of %s failed; the next look retries", run_id)
        finally:
            self._fetching.pop(run_id, None)

    def _resync(self) -> None:
        """Look at every streamed run's events, and for queued runs: notifications may have been missed."""
        for run_id in list(self._stored_subscribers):
            self._fetch_soon(run_id)
        self._wake_workers()

    async def _housekeeping(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for run_id in list(self._stored_subscribers):
                self._fetch_soon(run_id)
            ticks += 1
            if ticks % 12 == 0:  # about every minute
                try:
                    async with self._writer_database.write() as conn:
                        await run_events.forget_older_than(conn, self.retention_seconds)
                except Exception:
                    logger.exception("deleting old run events failed; it will run again")

    # -- worker notices ----------------------------------------------------------------------------

    def _wake_workers(self) -> None:
        for wake in self._on_wake:
            wake()

    def _cancel_run(self, run_id: str) -> None:
        for cancel in self._on_cancel:
            cancel(run_id)

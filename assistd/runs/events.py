"""Run events: what a streaming client receives, in the order the run produced them; and the notices
that tell workers a run was queued or cancelled.

The engine persists state first and publishes the event after, so every event a stream sends is a state
that a later ``retrieve`` returns. A change of a run's status is written together with its events
(``EventBus.writing``): where events cross processes (``assistd.runs.pg_events``) they are rows written
in the transaction of the change, so a client that saw the change by polling and acted on it (submitted
tool outputs, cancelled) finds its own events after the change's, never before.

This module's bus is the embedded mode's: one process, events handed over in memory. Subscribers
register before the work that produces their events can start (see ``services.runs``), so no event is
missed.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store.database import Database

# After one of these the run waits for the client (requires_action) or is over: a stream ends there.
FINAL_EVENTS = frozenset(
    {
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.incomplete",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "error",
    }
)


@dataclass(frozen=True, slots=True)
class RunEvent:
    event: str
    data: str  # one line of JSON
    seq: int | None = None  # its place in the run's stored events, where events are stored

    @property
    def final(self) -> bool:
        return self.event in FINAL_EVENTS

    def encode(self) -> bytes:
        # The id lets a client that lost the stream resume after it (Last-Event-ID).
        head = f"id: {self.seq}\n" if self.seq is not None else ""
        return f"{head}event: {self.event}\ndata: {self.data}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Published:
    """An event as its publisher gave it: serialised, in its plain and (if it differs) detailed form."""

    event: str
    data: str
    detailed_data: str | None = None

    def form(self, detailed: bool, seq: int | None = None) -> RunEvent:
        data = self.detailed_data if detailed and self.detailed_data is not None else self.data
        return RunEvent(self.event, data, seq)


def serialize(payload: BaseModel) -> str:
    return payload.model_dump_json(exclude_unset=True, by_alias=True)


def _encode(payload: BaseModel | dict[str, Any]) -> str:
    if isinstance(payload, BaseModel):
        return serialize(payload)
    return json.dumps(payload, separators=(",", ":"))


def published(
    event: str, payload: BaseModel | dict[str, Any], detailed: BaseModel | None = None
) -> Published:
    """Objects are SDK models; deltas, the hot path, plain dicts. ``detailed``: the form for streams that
    asked for file_search results' text, when it differs."""
    detailed_data = None
    if detailed is not None and detailed is not payload:
        detailed_data = _encode(detailed)
    return Published(event, _encode(payload), detailed_data)


class Subscription:
    """The events of one run from the moment of subscribing; read them with ``next`` until a final one."""

    def __init__(self, bus: EventBus, run_id: str, *, detailed: bool) -> None:
        self._bus = bus
        self.run_id = run_id
        self.detailed = detailed
        self.queue: asyncio.Queue[RunEvent] = asyncio.Queue()

    async def next(self) -> RunEvent:
        """The next event. Cancelling the wait (e.g. by a timeout) loses nothing."""
        return await self.queue.get()

    def start_after(self, seq: int) -> None:
        """Where events are stored: deliver those after ``seq``, the run's event just before the first
        one this subscriber wants (see ``Outbox.seq_before``). Here events arrive live: nothing to do."""

    def close(self) -> None:
        self._bus._unsubscribe(self)


@dataclass
class Outbox:
    """What one transaction that changes a run tells others: the run's events, and notices to the
    workers. ``write`` within the transaction, ``send`` once it committed (see ``EventBus.writing``)."""

    run_id: str
    events: list[Published] = field(default_factory=list)
    wake: bool = False  # the run was queued: a worker should claim it
    cancel: bool = False  # the run's worker should stop its model call
    # The run's last stored event before this outbox's: a stream that starts with them starts after it.
    seq_before: int = 0

    def add(
        self, event: str, payload: BaseModel | dict[str, Any], *, detailed: BaseModel | None = None
    ) -> None:
        self.events.append(published(event, payload, detailed))

    def wake_workers(self) -> None:
        self.wake = True

    def cancel_run(self) -> None:
        self.cancel = True


class EventBus:
    """Events and worker notices within one process."""

    # Whether events are stored (and a broken stream can be resumed); see pg_events.
    stores_events = False

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._on_wake: list[Callable[[], None]] = []
        self._on_cancel: list[Callable[[str], None]] = []

    async def start(self) -> None:
        """Begin serving (a bus that crosses processes connects here)."""

    async def close(self) -> None:
        """Stop serving; events published so far are delivered or stored first."""

    def serve_worker(self, wake: Callable[[], None], cancel: Callable[[str], None]) -> None:
        """A worker of this process: ``wake`` when a run was queued, ``cancel(run_id)`` when one was
        cancelled (wherever that happened)."""
        self._on_wake.append(wake)
        self._on_cancel.append(cancel)

    # -- publishing --------------------------------------------------------------------------------

    def publish(
        self,
        run_id: str,
        event: str,
        payload: BaseModel | dict[str, Any],
        *,
        detailed: BaseModel | None = None,
    ) -> None:
        """An event that follows the run's last one. Serialised once, and only if someone listens."""
        if self._subscribers.get(run_id):
            self._deliver(run_id, [published(event, payload, detailed)])

    def outbox(self, run_id: str) -> Outbox:
        return Outbox(run_id)

    @asynccontextmanager
    async def writing(self, database: Database, run_id: str) -> AsyncIterator[tuple[AsyncConnection, Outbox]]:
        """A write transaction and the outbox of its changes to ``run_id``: the outbox is written before
        the transaction commits and sent after; if the block fails, neither happens."""
        outbox = self.outbox(run_id)
        async with database.write() as conn:
            yield conn, outbox
            await self.write(conn, outbox)
        self.send(outbox)

    async def write(self, conn: AsyncConnection, outbox: Outbox) -> None:
        """Within the transaction that made the outbox's changes. In memory: nothing to write."""

    def send(self, outbox: Outbox) -> None:
        """After that transaction committed."""
        if outbox.events and self._subscribers.get(outbox.run_id):
            self._deliver(outbox.run_id, outbox.events)
        if outbox.wake:
            for wake in self._on_wake:
                wake()
        if outbox.cancel:
            for cancel in self._on_cancel:
                cancel(outbox.run_id)

    # -- subscribing -------------------------------------------------------------------------------

    def subscribe(self, run_id: str, *, detailed: bool = False, after: int | None = None) -> Subscription:
        """``detailed``: the subscriber gets the detailed form of events that have one. ``after``: where
        events are stored, deliver those after this one (a resumed stream)."""
        subscription = Subscription(self, run_id, detailed=detailed)
        self._subscribers[run_id].add(subscription)
        return subscription

    def _deliver(self, run_id: str, events: list[Published]) -> None:
        for subscription in self._subscribers.get(run_id, ()):
            for item in events:
                subscription.queue.put_nowait(item.form(subscription.detailed))

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.run_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.run_id]

"""Run events: what a streaming client receives, in the order the run produced them.

The engine persists state first and publishes the event after, so every event a stream sends is a state
that a later ``retrieve`` returns. This bus is in-process; subscribers register before the work that
produces their events can start (see ``services.runs``), so no event is missed.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

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

    @property
    def final(self) -> bool:
        return self.event in FINAL_EVENTS

    def encode(self) -> bytes:
        return f"event: {self.event}\ndata: {self.data}\n\n".encode()


def serialize(payload: BaseModel) -> str:
    return payload.model_dump_json(exclude_unset=True, by_alias=True)


def _encode(payload: BaseModel | dict[str, Any]) -> str:
    if isinstance(payload, BaseModel):
        return serialize(payload)
    return json.dumps(payload, separators=(",", ":"))


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

    def close(self) -> None:
        self._bus._unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, run_id: str, *, detailed: bool = False) -> Subscription:
        """``detailed``: the subscriber gets the detailed form of events that have one (see ``publish``)."""
        subscription = Subscription(self, run_id, detailed=detailed)
        self._subscribers[run_id].add(subscription)
        return subscription

    def publish(
        self,
        run_id: str,
        event: str,
        payload: BaseModel | dict[str, Any],
        *,
        detailed: BaseModel | None = None,
    ) -> None:
        """Objects are SDK models; deltas, the hot path, plain dicts. Either is serialised once, and
        only if someone listens. ``detailed``: the form for detailed subscribers, when it differs (a
        step with file_search results' text, which clients get only when they ask)."""
        subscribers = self._subscribers.get(run_id)
        if not subscribers:
            return
        item = RunEvent(event, _encode(payload))
        detailed_item = item
        if detailed is not None and detailed is not payload:
            detailed_item = RunEvent(event, _encode(detailed))
        for subscription in subscribers:
            subscription.queue.put_nowait(detailed_item if subscription.detailed else item)

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.run_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.run_id]

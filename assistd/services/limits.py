"""Limits on what one caller may ask of the server at once: a request rate per key, and a number of
active runs per project. Over a limit, the caller gets 429 with ``retry-after``, which the SDK honours
(it waits, then retries)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import RateLimited
from assistd.runs import states
from assistd.store import tables

# Idle buckets are forgotten past this many keys (open mode accepts any bearer, so any number of them).
MAX_TRACKED_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RequestRate:
    """At most ``per_minute`` requests per key, in bursts of as many, refilled evenly (a token bucket).
    Each process counts its own requests: behind a load balancer over N nodes a key gets up to N times
    this."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """Count one request of ``key``; ``RateLimited`` if it has none left."""
        clock = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_KEYS:
                self._forget_idle(clock)
            bucket = self._buckets[key] = _Bucket(self.capacity, clock)
        bucket.tokens = min(self.capacity, bucket.tokens + (clock - bucket.updated) * self.per_second)
        bucket.updated = clock
        if bucket.tokens < 1:
            raise RateLimited(
                f"Rate limit reached: at most {int(self.capacity)} requests per minute for this key. "
                "Try again shortly.",
                retry_after=(1 - bucket.tokens) / self.per_second,
            )
        bucket.tokens -= 1

    def _forget_idle(self, clock: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (clock - bucket.updated) * self.per_second >= self.capacity
        ]
        for key in full or list(self._buckets)[: MAX_TRACKED_KEYS // 2]:
            del self._buckets[key]


async def check_active_runs(conn: AsyncConnection, project_id: str, limit: int) -> None:
    """``RateLimited`` if the project has ``limit`` runs active already (0: no limit)."""
    if limit <= 0:
        return
    if conn.dialect.name == "postgresql":
        # Starts of one project's runs count one after another (SQLite's writers do anyway).
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:project, 1))"), {"project": project_id}
        )
    runs = tables.runs
    active = await conn.scalar(
        select(func.count()).where(runs.c.project_id == project_id, runs.c.status.in_(sorted(states.ACTIVE)))
    )
    if (active or 0) >= limit:
        raise RateLimited(
            f"Too many active runs: this project may have at most {limit} runs queued or in progress "
            "at once. Try again when one has ended.",
            retry_after=1,
        )

"""Prometheus metrics of one process (``GET /metrics``).

Counters and histograms are this process's; the runs by status and the queue are read from the
database at each scrape, so every node reports the same, cluster-wide, numbers for them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from assistd.backends.base import Accepted, Chunk, Finish
from assistd.runs import states
from assistd.store import queue
from assistd.store.database import Database

__all__ = ["CONTENT_TYPE_LATEST", "render"]

REQUESTS = Counter(
    "assistd_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "assistd_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a stream's end, for streams).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ACTIVE_STREAMS = Gauge("assistd_active_streams", "Run event streams open in this process.")
MODEL_TOKENS = Counter(
    "assistd_model_tokens", "Tokens in and out of model calls, by backend.", ["backend", "direction"]
)
MODEL_SECONDS = Histogram(
    "assistd_model_call_duration_seconds",
    "Time of one model call, from the request to its last chunk, by backend.",
    ["backend"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MODEL_FIRST_CHUNK_SECONDS = Histogram(
    "assistd_model_first_chunk_seconds",
    "Time from a model call's request to its first chunk, by backend.",
    ["backend"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNS = Gauge("assistd_runs", "Runs in the database, by status (all processes).", ["status"])
QUEUE_DEPTH = Gauge("assistd_run_queue_depth", "Runs waiting for a worker (queued), in the database.")


async def render(database: Database) -> bytes:
    """The exposition text, with the database-wide gauges read now."""
    async with database.read() as conn:
        counts = await queue.runs_by_status(conn)
    for status in states.ALL:
        RUNS.labels(status).set(counts.get(status, 0))
    QUEUE_DEPTH.set(counts.get("queued", 0))
    return generate_latest()


async def measured(backend: str, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """A model call's chunks, passed through; its time, first chunk and tokens recorded."""
    started = time.perf_counter()
    first = True
    try:
        async for chunk in chunks:
            if first and not isinstance(chunk, Accepted):  # the model's first output, not its 200
                MODEL_FIRST_CHUNK_SECONDS.labels(backend).observe(time.perf_counter() - started)
                first = False
            if isinstance(chunk, Finish):
                MODEL_TOKENS.labels(backend, "prompt").inc(chunk.usage.prompt_tokens)
                MODEL_TOKENS.labels(backend, "completion").inc(chunk.usage.completion_tokens)
            yield chunk
    finally:
        MODEL_SECONDS.labels(backend).observe(time.perf_counter() - started)
        # A consumer that stops early closes this generator; the backend's call must end with it.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()

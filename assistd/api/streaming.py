"""Server-sent events: a run's events as the SDK reads them, ending with ``done``/``[DONE]``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from assistd import metrics
from assistd.runs.events import Subscription

logger = logging.getLogger("assistd.api")

DONE = b"event: done\ndata: [DONE]\n\n"
# A comment line: the SDK's decoder skips it, proxies see traffic. No blank line after it: a blank line
# ends an event, and the SDK's decoder, which keeps the last ``id:`` it saw, would dispatch an empty
# event (and fail to parse it) once the stream has had an id.
KEEPALIVE = b": keep-alive\n"
# The reference asks for the error wrapped in {"error": ...}: the SDK raises APIError only then.
STREAM_FAILED = (
    "event: error\ndata: "
    + json.dumps(
        {
            "error": {
                "message": "The server had an error while streaming this run. The run goes on; "
                "retrieve it to see how it ends.",
                "type": "server_error",
                "param": None,
                "code": "server_error",
            }
        }
    )
    + "\n\n"
).encode()


async def _events(subscription: Subscription | None, keepalive_seconds: float) -> AsyncIterator[bytes]:
    if subscription is None:  # a resumed stream with nothing left to send
        yield DONE
        return
    metrics.ACTIVE_STREAMS.inc()
    try:
        while True:
            try:
                async with asyncio.timeout(keepalive_seconds):
                    event = await subscription.next()
            except TimeoutError:
                yield KEEPALIVE
                continue
            yield event.encode()
            if event.final:
                break
        yield DONE
    except Exception:
        # A failure of the stream itself (a run's own failures are thread.run.failed events).
        logger.exception("stream of %s failed", subscription.run_id)
        yield STREAM_FAILED
        yield DONE
    finally:
        # Also when the client goes away: the run goes on, only this stream stops.
        subscription.close()
        metrics.ACTIVE_STREAMS.dec()


def event_stream(subscription: Subscription | None, *, keepalive_seconds: float) -> StreamingResponse:
    return StreamingResponse(
        _events(subscription, keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

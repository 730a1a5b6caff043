"""Server-sent events: a run's events as the SDK reads them, ending with ``done``/``[DONE]``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from assistd.runs.events import Subscription

DONE = b"event: done\ndata: [DONE]\n\n"


async def _events(subscription: Subscription) -> AsyncIterator[bytes]:
    try:
        async for event in subscription:
            yield event.encode()
        yield DONE
    finally:
        # Also when the client goes away: the run goes on, only this stream stops.
        subscription.close()


def event_stream(subscription: Subscription) -> StreamingResponse:
    return StreamingResponse(
        _events(subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

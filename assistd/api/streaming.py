"""Server-sent events: the response that streams them, and a run's events as the SDK reads them, ending
with ``done``/``[DONE]``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from assistd import metrics
from assistd.api.disconnect import wait_for_disconnect
from assistd.runs.events import Subscription

logger = logging.getLogger("assistd.api")

# Neither a cache nor a proxy (nginx's X-Accel-Buffering) may hold events back.
_NOT_BUFFERED = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# How every stream's last piece ends (a run's ``done`` event, Chat Completions' [DONE]).
STREAM_END = b"data: [DONE]\n\n"
DONE = b"event: done\n" + STREAM_END
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


class EventStream(StreamingResponse):
    """Server-sent events: a StreamingResponse, cheaper on the path of every streamed answer.

    * The piece that ends with ``data: [DONE]``, the last, ends the body too: uvicorn writes it and
      the end of the chunked body at once, where StreamingResponse sends an empty message after it,
      and uvicorn makes another write of that.
    * A client that leaves stops the stream (and so the model call) as with StreamingResponse, but
      the task that waits for its ``http.disconnect`` is a plain asyncio task that cancels the stream,
      not an anyio task group running the stream in a task of its own: the group cost every streamed
      completion 60 to 85 us of CPU, and one more turn of the event loop before its first byte.
    * ``on_close`` is awaited however the response ends, and the body's generator is closed: a
      generator closed before its first step, or left at a ``yield`` by a send that failed or was
      cancelled, runs no ``finally`` of its own, and what it holds (a run's subscription to events, a
      model call) would stay open until the garbage collector found it.
    """

    _ended = False  # the body's last message is sent (or on its way)

    def __init__(
        self, content: AsyncGenerator[bytes, None], *, on_close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=_NOT_BUFFERED)
        self._generator = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, receive, send)
        finally:
            await self._generator.aclose()
            if self._on_close is not None:
                await self._on_close()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        spec_version = tuple(map(int, scope.get("asgi", {}).get("spec_version", "2.0").split(".")))
        if scope["type"] != "http" or spec_version >= (2, 4):
            # ASGI 2.4 servers raise on a send to a client that left; nothing to listen for.
            await super().__call__(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        left = False

        async def watch() -> None:
            nonlocal left
            # After the body, a server's next message is http.disconnect: the client left, or (uvicorn
            # says so too) the response is complete, which is no reason to cancel anything.
            await wait_for_disconnect(receive)
            if not self._ended:
                left = True
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            # Ours if the watcher cancelled and nobody else did: the stream stops, as a client that
            # left stops a StreamingResponse; the relay's generator has closed the model call.
            if left and task.uncancel() == 0:
                return
            raise
        finally:
            # Not awaited: it stops at its next turn (it cannot have run since the stream ended).
            watcher.cancel()
            if watcher.done() and not watcher.cancelled():
                watcher.result()  # a failure of the watcher itself (of receive), as the group raised it

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self.body_iterator:
            assert isinstance(piece, bytes)
            self._ended = piece.endswith(STREAM_END)
            await send({"type": "http.response.body", "body": piece, "more_body": not self._ended})
        if not self._ended:
            self._ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _events(subscription: Subscription | None, keepalive_seconds: float) -> AsyncGenerator[bytes, None]:
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
            if event.final:
                # The last event and the end go out in one write: nothing comes between them.
                yield event.encode() + DONE
                return
            yield event.encode()
    except Exception:
        # A failure of the stream itself (a run's own failures are thread.run.failed events).
        logger.exception("stream of %s failed", subscription.run_id)
        yield STREAM_FAILED + DONE
    finally:
        # Also when the client goes away: the run goes on, only this stream stops.
        subscription.close()
        metrics.ACTIVE_STREAMS.dec()


def event_stream(subscription: Subscription | None, *, keepalive_seconds: float) -> StreamingResponse:
    async def unsubscribe() -> None:
        if subscription is not None:
            subscription.close()  # again, if the stream's own finally did: that is harmless

    return EventStream(_events(subscription, keepalive_seconds), on_close=unsubscribe)

"""The response that streams server-sent events (runs and Chat Completions) lets go of what its stream
holds however it ends, driven here as an ASGI server drives it.

The two endings a live server cannot be made to reach on demand: the client leaves while the status
line is being sent (an Idempotency-Key's write delays that send), so the stream's generator never
starts; and it leaves while a send waits (a client that stopped reading), so the generator is left at a
``yield``. Neither runs the generator's own ``finally``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from assistd.api.streaming import STREAM_END, EventStream

STUCK_S = 30.0  # a send that waits this long is a client that stopped reading
BOUND_S = 5.0  # the response must be over well before the stuck send would be


async def _leave_during(stuck_message: str) -> list[str]:
    """What happened, in order, when the client left while the server was sending ``stuck_message``."""
    happened: list[str] = []
    left = asyncio.Event()

    async def events() -> AsyncGenerator[bytes, None]:
        happened.append("started")
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n" + STREAM_END
        finally:
            happened.append("generator closed")

    async def release() -> None:
        happened.append("released")

    async def receive() -> dict[str, str]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == stuck_message:
            left.set()
            await asyncio.sleep(STUCK_S)

    response = EventStream(events(), on_close=release)
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}
    await asyncio.wait_for(response(scope, receive, send), BOUND_S)  # type: ignore[arg-type]
    return happened


@pytest.mark.parametrize(
    ("stuck_message", "expected"),
    [
        ("http.response.start", ["released"]),
        ("http.response.body", ["started", "generator closed", "released"]),
    ],
    ids=["before-the-first-event", "at-a-yield"],
)
def test_a_client_that_leaves_releases_what_the_stream_holds(stuck_message: str, expected: list[str]) -> None:
    assert asyncio.run(_leave_during(stuck_message)) == expected


def test_a_stream_read_to_its_end_is_released_once_it_is_sent() -> None:
    happened: list[str] = []
    sent: list[tuple[bytes, bool]] = []

    async def events() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n" + STREAM_END

    async def release() -> None:
        happened.append(f"released after {len(sent)} pieces")

    async def receive() -> dict[str, str]:
        await asyncio.sleep(STUCK_S)  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            sent.append((message["body"], message["more_body"]))  # type: ignore[arg-type]

    async def serve() -> None:
        response = EventStream(events(), on_close=release)
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}
        await asyncio.wait_for(response(scope, receive, send), BOUND_S)  # type: ignore[arg-type]

    asyncio.run(serve())
    # The last piece ends the body itself: no empty message after it.
    assert sent == [(b"data: 1\n\n", True), (b"data: 2\n\n" + STREAM_END, False)]
    assert happened == ["released after 2 pieces"]

"""Work that stops when the client goes away before its response starts.

Starlette does not cancel an endpoint whose client disconnected; a model call would go on to its end
(and an upstream on generating) for nobody. Once a response streams, Starlette itself stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request
from starlette.types import Receive

T = TypeVar("T")

# What nginx logs for a client that closed its request; the client never sees it.
CLIENT_CLOSED_REQUEST = 499


class ClientDisconnected(Exception):
    """The client left before the work was done; the work was cancelled."""


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or ``ClientDisconnected`` (with ``work`` cancelled) if the client goes first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientDisconnected


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns at the server's ``http.disconnect``. Only once the request's body is read: until then
    ``receive`` hands out the body, which this drops."""
    while (await receive())["type"] != "http.disconnect":
        pass

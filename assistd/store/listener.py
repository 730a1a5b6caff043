"""A PostgreSQL connection that LISTENs: NOTIFY payloads handed to callbacks, kept up across outages.

One connection per process, outside the pool (a listening connection must stay open and idle). When it
is lost it is made again; notifications sent meanwhile are lost, so ``on_connect`` runs after every
(re)connection for the owner to look again at what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger("assistd.listener")

RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
PING_SECONDS = 10.0


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self,
        dsn: str,
        handlers: dict[str, Callable[[str], None]],
        on_connect: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self.handlers = handlers
        self.on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, wait_seconds: float = 10.0) -> None:
        """Connect (waiting up to ``wait_seconds`` for the first connection) and keep connected."""
        self._task = asyncio.create_task(self._supervise(), name="assistd-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as error:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning("cannot listen for notifications (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                await self._listen(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                logger.warning("notification connection lost (%s); reconnecting", error)
            finally:
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())
        for channel, handler in self.handlers.items():
            await connection.add_listener(channel, _dispatch(handler))
        self._connected.set()
        self.on_connect()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_SECONDS)
            if not lost.is_set():
                # A connection cut without a word (a dead peer, a dropped route) shows only when used.
                await connection.execute("SELECT 1", timeout=PING_SECONDS)
        raise OSError("the connection was closed")


def _dispatch(handler: Callable[[str], None]) -> Callable[[object, int, str, str], None]:
    def callback(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            handler(payload)
        except Exception:
            logger.exception("handling a notification failed")

    return callback

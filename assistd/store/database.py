"""The engine and transactions, identical for SQLite and PostgreSQL to everything above this module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from assistd.store import sqlite_driver

# Execution option that marks a connection whose transaction will write (see _begin below).
_WRITE = "assistd_write"
# A new connection the server refuses (PostgreSQL at max_connections, restarting, a failover) is tried
# again after these pauses, about 3 s in all, before the request fails: such refusals pass quickly,
# and a request that waits a little is better than a run that fails.
CONNECT_RETRY_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)

log = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine with the settings each backend needs to behave well under concurrency."""
    parsed = make_url(url)
    # Every connection is used inside a transaction that commits or rolls back (Database.read/write),
    # so the pool's own rollback on return would only add a round trip.
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_reset_on_return=None,
        )

    database = parsed.database or ":memory:"
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        async_creator=sqlite_driver.connector(database, uri=bool(parsed.query.get("uri"))),
        pool_size=pool_size,
        max_overflow=0,
        pool_reset_on_return=None,
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver sends no BEGIN of its own (isolation_level None); the "begin" event below does.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY when another
        # connection writes first; BEGIN IMMEDIATE takes the write lock up front and waits for it
        # (busy_timeout) instead.
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        # Reads issue no BEGIN: each statement reads its own consistent snapshot (WAL), which is all
        # assistd's reads need.


class Database:
    """Owns the engine; hands out read and write transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> Database:
        return cls(create_engine(url, pool_size=pool_size))

    async def connect(self) -> AsyncConnection:
        """A connection from the pool, or a new one; refusals are tried again (CONNECT_RETRY_PAUSES_S)."""
        for pause in CONNECT_RETRY_PAUSES_S:
            try:
                return await self.engine.connect()
            except (DBAPIError, OSError) as error:
                # Nothing was sent yet, so trying again cannot do anything twice.
                log.warning("database connection refused, trying again in %s s: %s", pause, error)
                await asyncio.sleep(pause)
        return await self.engine.connect()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading. On PostgreSQL one transaction; on SQLite each statement sees its
        own snapshot, so callers must not rely on two reads agreeing with each other."""
        conn = await self.connect()
        try:
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back on any exception.

        On SQLite, writers wait for each other inside SQLite (BEGIN IMMEDIATE, busy_timeout). Queueing
        them on an asyncio lock instead was measured: 10x fewer runs/s at 100 concurrent runs, since the
        lock holder's every step then waits behind all the requests the event loop is serving.
        """
        conn = await self.connect()
        try:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()

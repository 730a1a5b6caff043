"""An asyncio SQLite driver that costs one thread hop per statement.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives an aiosqlite connection, where creating a cursor,
executing, fetching and closing are each a round trip to the connection's thread: eight round trips for
a transaction of one statement, which measured as most of the cost of a run on SQLite. This driver
offers the part of aiosqlite's interface that the dialect uses (``async_creator`` of
``create_async_engine``) but does each statement's work, execute and fetch, in one round trip, and
keeps the results on the event loop's side. ``BEGIN`` travels with the transaction's first statement.

Each connection has a thread of its own, as with aiosqlite; SQLAlchemy never uses one connection from
two tasks at once, so the connection's calls never overlap.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN EXCLUSIVE"})
Row = tuple[Any, ...]
Description = tuple[tuple[Any, ...], ...] | None


class Connection:
    """What SQLAlchemy's aiosqlite adapter calls on a driver connection."""

    def __init__(self, path: str, *, uri: bool = False) -> None:
        self._path = path
        self._uri = uri
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assistd-sqlite")
        self._connection: sqlite3.Connection | None = None
        # A BEGIN not yet sent: it goes with the next statement, in the same round trip.
        self._pending_begin: str | None = None
        # Whether SQLite has a transaction open, as of the last round trip: COMMIT or ROLLBACK
        # without one (after a read, which sends no BEGIN) costs no round trip.
        self._in_transaction = False

    async def connect(self) -> Connection:
        # isolation_level=None: the driver sends no BEGIN of its own; SQLAlchemy's "begin" event does.
        self._connection = await self._call(
            lambda: sqlite3.connect(self._path, uri=self._uri, isolation_level=None)
        )
        return self

    async def _call(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = Cursor(self)
        await cursor.execute(sql, parameters)
        return cursor

    def _run(
        self, begin: str | None, sql: str, parameters: Any, *, many: bool
    ) -> tuple[Description, list[Row], int, int | None, bool]:
        """In the connection's thread: a pending BEGIN, then the statement and all its rows; and
        whether a transaction is open after it."""
        connection = self._open()
        if begin is not None:
            connection.execute(begin)
        cursor = connection.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            elif parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.description, rows, cursor.rowcount, cursor.lastrowid, connection.in_transaction
        finally:
            cursor.close()

    async def commit(self) -> None:
        await self._end(self._open().commit)

    async def rollback(self) -> None:
        await self._end(self._open().rollback)

    async def _end(self, end: Callable[[], None]) -> None:
        self._pending_begin = None  # a transaction that did nothing needs no round trip
        if self._in_transaction:
            await self._call(end)
            self._in_transaction = False

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        connection = self._open()
        await self._call(lambda: connection.create_function(*args, **kwargs))

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._call(connection.close)
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Abandons the connection without waiting (SQLAlchemy's terminate)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._executor.submit(connection.close)
        self._executor.shutdown(wait=False)


class Cursor:
    """A cursor whose results are read in full by ``execute``; fetching is local."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Row] = []
        self._next = 0

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        if sql.strip().upper() in _BEGINS and self._connection._pending_begin is None:
            self._connection._pending_begin = sql
            self.description, self._rows, self.rowcount = None, [], -1
            return self
        await self._run(sql, parameters, many=False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        await self._run(sql, list(parameters), many=True)
        return self

    async def _run(self, sql: str, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        begin, connection._pending_begin = connection._pending_begin, None
        try:
            result = await connection._call(lambda: connection._run(begin, sql, parameters, many=many))
        except BaseException:
            # A failed statement may still have opened the transaction (its BEGIN went first): let
            # the rollback that follows reach SQLite.
            connection._in_transaction = True
            raise
        self.description, self._rows, self.rowcount, self.lastrowid, connection._in_transaction = result
        self._next = 0

    async def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        count = self.arraysize if size is None else size
        rows = self._rows[self._next : self._next + count]
        self._next += len(rows)
        return rows

    async def fetchall(self) -> list[Row]:
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return rows

    async def close(self) -> None:
        self._rows = []


def connector(database: str | Path, *, uri: bool = False) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``."""

    def create() -> Any:
        return Connection(str(database), uri=uri).connect()

    return create

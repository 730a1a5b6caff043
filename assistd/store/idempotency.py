"""Remembered responses of requests sent with an Idempotency-Key (see ``assistd.api.idempotency``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import tables
from assistd.store.database import Database

requests = tables.idempotent_requests


@dataclass(frozen=True, slots=True)
class Remembered:
    fingerprint: str
    status: int | None  # None: the first request is still being served
    content_type: str | None
    body: bytes | None


async def claim(database: Database, key_hash: str, fingerprint: str) -> Remembered | None:
    """Take the key for a request now starting; or, if it is taken, what is remembered of it."""
    try:
        async with database.write() as conn:
            await conn.execute(
                requests.insert().values(key_hash=key_hash, fingerprint=fingerprint, created_at=time.time())
            )
        return None
    except IntegrityError:
        async with database.read() as conn:
            row = (await conn.execute(select(requests).where(requests.c.key_hash == key_hash))).first()
        if row is None:  # forgotten in between: the caller may simply try again
            return Remembered(fingerprint, None, None, None)
        return Remembered(row.fingerprint, row.status, row.content_type, row.body)


async def remember(
    database: Database, key_hash: str, status: int, content_type: str | None, body: bytes
) -> None:
    async with database.write() as conn:
        await conn.execute(
            update(requests)
            .where(requests.c.key_hash == key_hash)
            .values(status=status, content_type=content_type, body=body)
        )


async def release(database: Database, key_hash: str) -> None:
    """Forget the key: its request failed in a way a retry should not be told again."""
    async with database.write() as conn:
        await conn.execute(delete(requests).where(requests.c.key_hash == key_hash))


async def forget_older_than(conn: AsyncConnection, seconds: float) -> None:
    await conn.execute(delete(requests).where(requests.c.created_at < time.time() - seconds))

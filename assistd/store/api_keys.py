"""API keys and projects in the database. Above the project scope on purpose: a key is what tells
which project a request acts in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.ids import Prefix, new_id, now
from assistd.store import tables

keys = tables.api_keys
projects = tables.projects


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    project_id: str
    project_name: str
    name: str | None
    prefix: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


async def project_named(conn: AsyncConnection, name: str) -> str:
    """The id of the project of this name, made if there is none."""
    found = await conn.scalar(select(projects.c.id).where(projects.c.name == name))
    if found is not None:
        return str(found)
    project_id = new_id(Prefix.PROJECT)
    await conn.execute(insert(projects).values(id=project_id, name=name, created_at=now()))
    return project_id


async def insert_key(
    conn: AsyncConnection, project_id: str, name: str | None, secret_hash: str, prefix: str
) -> str:
    key_id = new_id(Prefix.API_KEY)
    await conn.execute(
        insert(keys).values(
            id=key_id,
            project_id=project_id,
            name=name,
            secret_hash=secret_hash,
            prefix=prefix,
            created_at=now(),
        )
    )
    return key_id


async def all_keys(conn: AsyncConnection) -> list[StoredKey]:
    rows = await conn.execute(
        select(keys, projects.c.name.label("project_name"))
        .join(projects, projects.c.id == keys.c.project_id)
        .order_by(keys.c.created_at, keys.c.id)
    )
    return [
        StoredKey(
            id=row.id,
            project_id=row.project_id,
            project_name=row.project_name,
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )
        for row in rows
    ]


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    """Whether a key of this id was active and is revoked now."""
    result = await conn.execute(
        update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None)).values(revoked_at=now())
    )
    return bool(result.rowcount)


async def any_key(conn: AsyncConnection) -> bool:
    """Whether any key was ever made (revoked ones too: once there are keys, the server is closed)."""
    return await conn.scalar(select(keys.c.id).limit(1)) is not None


async def active_key(conn: AsyncConnection, secret_hash: str) -> tuple[str, str, int | None] | None:
    """The (key id, project id, last use) of the active key with this hash."""
    row = (
        await conn.execute(
            select(keys.c.id, keys.c.project_id, keys.c.last_used_at).where(
                keys.c.secret_hash == secret_hash, keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    return None if row is None else (row.id, row.project_id, row.last_used_at)


async def mark_used(conn: AsyncConnection, key_id: str, when: int) -> None:
    await conn.execute(update(keys).where(keys.c.id == key_id).values(last_used_at=when))

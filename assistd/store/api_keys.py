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


@dataclass(frozen=True, slots=True)
class StoredProject:
    id: str
    name: str
    created_at: int


async def all_projects(conn: AsyncConnection) -> list[StoredProject]:
    rows = await conn.execute(select(projects).order_by(projects.c.created_at, projects.c.id))
    return [StoredProject(id=row.id, name=row.name, created_at=row.created_at) for row in rows]


async def project_by_id(conn: AsyncConnection, project_id: str) -> StoredProject | None:
    row = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
    return None if row is None else StoredProject(id=row.id, name=row.name, created_at=row.created_at)


async def project_by_name(conn: AsyncConnection, name: str) -> StoredProject | None:
    row = (await conn.execute(select(projects).where(projects.c.name == name))).first()
    return None if row is None else StoredProject(id=row.id, name=row.name, created_at=row.created_at)


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


async def all_keys(
    conn: AsyncConnection, *, project_id: str | None = None, active: bool = False
) -> list[StoredKey]:
    """Keys in the order they were made: all of them, or a project's; revoked ones too unless
    ``active``."""
    query = (
        select(keys, projects.c.name.label("project_name"))
        .join(projects, projects.c.id == keys.c.project_id)
        .order_by(keys.c.created_at, keys.c.id)
    )
    if project_id is not None:
        query = query.where(keys.c.project_id == project_id)
    if active:
        query = query.where(keys.c.revoked_at.is_(None))
    rows = await conn.execute(query)
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


async def revoke(conn: AsyncConnection, key_id: str, *, project_id: str | None = None) -> bool:
    """Whether a key of this id (in this project, if one is given) was active and is revoked now."""
    query = update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
    if project_id is not None:
        query = query.where(keys.c.project_id == project_id)
    result = await conn.execute(query.values(revoked_at=now()))
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

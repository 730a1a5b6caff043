"""API keys: making, listing and revoking them, and telling which project a request's key acts in.

A key's secret is shown once, when it is made; the database keeps its SHA-256 (the secret is 256 random
bits, so a slow password hash would add nothing but cost to every request). Keys of
``ASSISTD_API_KEYS`` act in the default project. While no key exists at all the server is open (any
bearer, or none, acts in the default project); once one exists, every request needs a valid key,
checked against the database on every request, so a revoked key is refused at once on every node.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import InvalidRequest, NotFound
from assistd.ids import now
from assistd.store import api_keys
from assistd.store.api_keys import StoredKey, StoredProject
from assistd.store.database import Database
from assistd.store.tables import DEFAULT_PROJECT_ID

SECRET_START = "sk-proj-"
SHOWN_CHARACTERS = 12  # of the secret, in listings: enough to tell keys apart, too few to use
# A key's last use is written at most this often (a write per request would cost more than the lookup).
LAST_USE_RESOLUTION_SECONDS = 60
# While the server is open, how often it looks whether a key was made meanwhile.
OPEN_RECHECK_SECONDS = 1.0


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str
    key: StoredKey


class ApiKeys:
    def __init__(self, database: Database, static_keys: frozenset[str] = frozenset()) -> None:
        self.database = database
        self.static_keys = static_keys
        # Keys are never deleted, only revoked: once closed, the server stays closed.
        self._closed = bool(static_keys)
        self._open_checked_at = -OPEN_RECHECK_SECONDS

    async def is_open(self) -> bool:
        """Whether no key exists at all (any request acts in the default project)."""
        if self._closed:
            return False
        clock = time.monotonic()
        if clock - self._open_checked_at >= OPEN_RECHECK_SECONDS:
            async with self.database.read() as conn:
                self._closed = await api_keys.any_key(conn)
            self._open_checked_at = clock
        return not self._closed

    async def project_of(self, secret: str) -> str | None:
        """The project the key acts in; None for a key that is unknown or revoked."""
        if secret in self.static_keys:
            return DEFAULT_PROJECT_ID
        async with self.database.read() as conn:
            found = await api_keys.active_key(conn, hash_secret(secret))
        if found is None:
            return None
        key_id, project_id, last_used_at = found
        clock = now()
        if last_used_at is None or clock - last_used_at >= LAST_USE_RESOLUTION_SECONDS:
            async with self.database.write() as conn:
                await api_keys.mark_used(conn, key_id, clock)
        return project_id

    async def create(self, project: str, name: str | None = None) -> NewKey:
        """A new key acting in the project of this name (made if there is none)."""
        async with self.database.write() as conn:
            made = await self._new_key(conn, await api_keys.project_named(conn, project), name)
        self._closed = True
        return made

    async def create_in(self, project_id: str, name: str | None = None) -> NewKey:
        """A new key acting in the project of this id."""
        async with self.database.write() as conn:
            if await api_keys.project_by_id(conn, project_id) is None:
                raise NotFound("project", project_id)
            made = await self._new_key(conn, project_id, name)
        self._closed = True
        return made

    async def _new_key(self, conn: AsyncConnection, project_id: str, name: str | None) -> NewKey:
        secret = SECRET_START + secrets.token_urlsafe(32)
        key_id = await api_keys.insert_key(
            conn, project_id, name, hash_secret(secret), secret[:SHOWN_CHARACTERS]
        )
        key = next(k for k in await api_keys.all_keys(conn, project_id=project_id) if k.id == key_id)
        return NewKey(secret=secret, key=key)

    async def list_keys(self, project_id: str | None = None, *, active: bool = False) -> list[StoredKey]:
        """Every key (or a project's), in the order they were made; revoked ones too unless ``active``."""
        async with self.database.read() as conn:
            if project_id is not None and await api_keys.project_by_id(conn, project_id) is None:
                raise NotFound("project", project_id)
            return await api_keys.all_keys(conn, project_id=project_id, active=active)

    async def revoke(self, key_id: str, project_id: str | None = None) -> bool:
        """Whether the key (in this project, if one is given) was active and is revoked now."""
        async with self.database.write() as conn:
            return await api_keys.revoke(conn, key_id, project_id=project_id)

    # -- projects --------------------------------------------------------------------------------

    async def projects(self) -> list[StoredProject]:
        async with self.database.read() as conn:
            return await api_keys.all_projects(conn)

    async def project(self, project_id: str) -> StoredProject:
        async with self.database.read() as conn:
            found = await api_keys.project_by_id(conn, project_id)
        if found is None:
            raise NotFound("project", project_id)
        return found

    async def create_project(self, name: str) -> StoredProject:
        """A new project; names are unique (the CLI names projects by them)."""
        async with self.database.write() as conn:
            if await api_keys.project_by_name(conn, name) is not None:
                raise InvalidRequest(f"A project named '{name}' already exists.", param="name")
            project_id = await api_keys.project_named(conn, name)
            made = await api_keys.project_by_id(conn, project_id)
        assert made is not None  # made in this transaction
        return made

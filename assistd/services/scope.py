"""What every service call runs within: the database and the caller's project."""

from __future__ import annotations

from dataclasses import dataclass

from assistd.store.database import Database


@dataclass(frozen=True, slots=True)
class Scope:
    database: Database
    project_id: str

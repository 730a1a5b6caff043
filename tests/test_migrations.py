"""The migrations build exactly the schema the code declares (assistd/store/tables.py).

This is the one test that looks inside assistd; it is skipped where only the client is installed
(the old-SDK run drives a server from another environment).
"""

from __future__ import annotations

from pathlib import Path

import pytest

# The server's own dependencies are absent from the client-only environment.
pytest.importorskip("alembic")

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from assistd.store import migrate
from assistd.store.tables import metadata


def test_migrations_match_the_declared_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    with engine.begin() as conn:
        from alembic import command

        command.upgrade(migrate.alembic_config(conn), "head")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []

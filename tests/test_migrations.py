"""The migrations build exactly the schema the code declares (assistd/store/tables.py).

This is the one test that looks inside assistd; it is skipped where only the client is installed
(the old-SDK run drives a server from another environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# The server's own dependencies are absent from the client-only environment.
pytest.importorskip("alembic")

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.retrieval.search import query_terms
from assistd.store import migrate
from assistd.store.database import Database
from assistd.store.tables import metadata
from tests.harness import create_pg_database, drop_pg_database


def test_migrations_match_the_declared_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    with engine.begin() as conn:
        from alembic import command

        command.upgrade(migrate.alembic_config(conn), "head")
    with engine.connect() as conn:
        undeclared = _virtual_tables(conn)

        def declared(name: str | None, kind: str, _parent: Any) -> bool:
            return not (kind == "table" and name in undeclared)

        context = MigrationContext.configure(conn, opts={"include_name": declared})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert undeclared  # the full-text index is there, ...
    assert differences == []  # ... and everything else is exactly what tables.py declares


def _virtual_tables(conn: Connection) -> set[str]:
    """SQLite's virtual tables (the full-text index of migration 0005) and the tables they keep their
    data in (named after them): DDL that tables.py cannot declare."""
    tables = [name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")]
    virtual = [
        name
        for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        )
    ]
    return {name for name in tables if any(name == v or name.startswith(f"{v}_") for v in virtual)}


# -- the full-text index (migration 0005) -------------------------------------------------------------

CHUNK_COLUMNS = "project_id, vector_store_id, file_id, chunk_index, text, start_offset, end_offset, tokens"
INSERT_CHUNK = text(
    f"INSERT INTO vector_store_chunks ({CHUNK_COLUMNS}, embedding)"
    " VALUES ('proj_m', 'vs_m', :file, 0, :text, 0, 1, 1, :embedding)"
)


async def _containing(conn: AsyncConnection, words: str) -> list[int]:
    """The seqs of the chunks that contain every term of ``words``, by the full-text index alone."""
    dialect = conn.dialect.name
    found: set[int] | None = None
    for term in query_terms([words], dialect=dialect):
        if dialect == "sqlite":
            table = "vector_store_chunks_cjk" if term.cjk else "vector_store_chunks_fts"
            statement = text(f"SELECT rowid FROM {table} WHERE {table} MATCH :q")
            query = f'text : "{term.text}"'
        else:
            statement = text(
                "SELECT seq FROM vector_store_chunks_fts"
                " WHERE terms @@ phraseto_tsquery('simple'::regconfig, :q)"
            )
            query = term.text
        seqs = {seq for (seq,) in await conn.execute(statement, {"q": query})}
        found = seqs if found is None else found & seqs
    assert found is not None, words
    return sorted(found)


async def _version(conn: AsyncConnection) -> int:
    version = await conn.scalar(text("SELECT chunk_version FROM vector_stores WHERE id = 'vs_m'"))
    assert isinstance(version, int)
    return version


@pytest.mark.anyio
async def test_the_full_text_index_covers_old_chunks_and_follows_every_change(
    backend: str, tmp_path: Path
) -> None:
    """Upgrading a database that has chunks indexes them; afterwards inserts, deletes and updates of
    chunks, by any statement, reach the index and move the store's chunk version."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fts.db'}" if backend == "sqlite" else create_pg_database()
    database = Database.from_url(url)
    try:
        await migrate.upgrade(database, "0004")
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO projects VALUES ('proj_m', 'm', 0)"))
            await conn.execute(
                text(
                    "INSERT INTO vector_stores (id, project_id, created_at, name)"
                    " VALUES ('vs_m', 'proj_m', 0, '')"
                )
            )
            for file_id, body in (
                ("f1", "Two pallets of part XK-4471 arrived damaged."),
                ("f2", "東京タワーの高さ"),
            ):
                await conn.execute(INSERT_CHUNK, {"file": file_id, "text": body, "embedding": b"\0\0\0\0"})
        await migrate.upgrade(database)
        async with database.read() as conn:
            assert await _containing(conn, "xk-4471") == [1]
            assert await _containing(conn, "タワー") == [2]
            assert await _containing(conn, "pallets") == [1]
            assert await _containing(conn, "arrived damaged") == [1]
            assert await _containing(conn, "大阪城") == []
            assert await _version(conn) == 0

        async with database.write() as conn:
            await conn.execute(
                INSERT_CHUNK, {"file": "f3", "text": "Spare XK-4471 parts.", "embedding": b"\0" * 4}
            )
            await conn.execute(text("DELETE FROM vector_store_chunks WHERE file_id = 'f1'"))
            await conn.execute(
                text("UPDATE vector_store_chunks SET text = '大阪城の石垣' WHERE file_id = 'f2'")
            )
        async with database.read() as conn:
            assert await _containing(conn, "XK-4471") == [3]
            assert await _containing(conn, "pallets") == []
            assert await _containing(conn, "タワー") == []
            assert await _containing(conn, "大阪城") == [2]
            assert await _version(conn) == 3  # per statement on PostgreSQL, per row on SQLite: one each here
            if backend == "sqlite":
                for table in ("vector_store_chunks_fts", "vector_store_chunks_cjk"):
                    await conn.execute(text(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')"))

        # Down and up again: the index is dropped and rebuilt from the chunks there.
        async with database.write() as conn:
            await conn.run_sync(lambda sync: migrate.command.downgrade(migrate.alembic_config(sync), "0004"))
        await migrate.upgrade(database)
        async with database.read() as conn:
            assert await _containing(conn, "XK-4471") == [3]
            assert await _containing(conn, "大阪城") == [2]
    finally:
        await database.close()
        if backend == "postgres":
            drop_pg_database(url)

"""A full-text index of vector store chunks, and a counter of the changes to each store's chunks.

Both are kept in step by the database itself (triggers), so that every statement that writes chunks,
today's and tomorrow's, keeps them right.

Words are matched whole, as most languages write them, and case-insensitively; no stemming and no stop
words, which are per language and would be wrong for much of the text users write. Scripts written
without spaces between words (Chinese, Japanese) or with particles glued to words (Korean: 서울에서 is
"in Seoul") are indexed by character instead, so that a query can ask for any run of them: a word-based
tokenizer would make a whole sentence, or a word with its particle, one token that nothing matches.

SQLite: two contentless FTS5 tables of each chunk's text and store, kept in step by triggers.
``vector_store_chunks_fts`` (``unicode61``: words) indexes every chunk; ``vector_store_chunks_cjk``
(``trigram``: every run of 3 characters) only the chunks that contain CJK characters, since it is
several times the size of their text. Trigrams cannot match a run of 1 or 2 CJK characters; the vector
half of a search still sees those.

PostgreSQL: ``vector_store_chunks_fts`` holds each chunk's ``tsvector`` (``assistd_chunk_terms(text)``:
the ``simple`` configuration after a space is put around every CJK character, so that those become
lexemes of one character each, with positions, and a query asks for a run of them as a phrase,
``東 <-> 京``), with a GIN index; the statement triggers that count changes keep it in step.

``assistd/retrieval/search.py`` builds its queries for these indexes.

Both: ``vector_stores.chunk_version`` goes up whenever a statement inserts, deletes or updates chunks of
the store; search keeps a store's vectors in memory and reads them again when it has moved.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Han (with its extensions and compatibility forms, and 々〆〇), hiragana, katakana (also half-width)
# and hangul (syllables and jamo). The same class as CJK in assistd/retrieval/search.py, which splits
# queries by it.
_CJK_RANGES = [
    (0x1100, 0x11FF),
    (0x3005, 0x3007),
    (0x3040, 0x30FF),
    (0x3130, 0x318F),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x20000, 0x3134F),
]
# A GLOB pattern (SQLite compares characters of a range by code point) and a regular expression class.
_HAS_CJK = "'*[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]*'"
_CJK_CLASS = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _CJK_RANGES)

_SQLITE_UP = [
    # Contentless (content=''): the tables keep only their index, and the triggers hand them every change;
    # a delete must give them the exact values that were indexed. Each chunk's store is indexed with its
    # text, so that a query asks for a term within stores and FTS5 answers from its index alone.
    "CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5(text, vector_store_id, content='',"
    " tokenize='unicode61 remove_diacritics 2', columnsize=0)",
    "CREATE VIRTUAL TABLE vector_store_chunks_cjk USING fts5(text, vector_store_id, content='',"
    " tokenize='trigram', columnsize=0)",
    f"""
    CREATE TRIGGER vector_store_chunks_inserted AFTER INSERT ON vector_store_chunks BEGIN
        INSERT INTO vector_store_chunks_fts (rowid, text, vector_store_id)
            VALUES (new.seq, new.text, new.vector_store_id);
        INSERT INTO vector_store_chunks_cjk (rowid, text, vector_store_id)
            SELECT new.seq, new.text, new.vector_store_id WHERE new.text GLOB {_HAS_CJK};
        UPDATE vector_stores SET chunk_version = chunk_version + 1 WHERE id = new.vector_store_id;
    END
    """,
    f"""
    CREATE TRIGGER vector_store_chunks_deleted AFTER DELETE ON vector_store_chunks BEGIN
        INSERT INTO vector_store_chunks_fts (vector_store_chunks_fts, rowid, text, vector_store_id)
            VALUES ('delete', old.seq, old.text, old.vector_store_id);
        INSERT INTO vector_store_chunks_cjk (vector_store_chunks_cjk, rowid, text, vector_store_id)
            SELECT 'delete', old.seq, old.text, old.vector_store_id WHERE old.text GLOB {_HAS_CJK};
        UPDATE vector_stores SET chunk_version = chunk_version + 1 WHERE id = old.vector_store_id;
    END
    """,
    f"""
    CREATE TRIGGER vector_store_chunks_updated AFTER UPDATE ON vector_store_chunks BEGIN
        INSERT INTO vector_store_chunks_fts (vector_store_chunks_fts, rowid, text, vector_store_id)
            VALUES ('delete', old.seq, old.text, old.vector_store_id);
        INSERT INTO vector_store_chunks_cjk (vector_store_chunks_cjk, rowid, text, vector_store_id)
            SELECT 'delete', old.seq, old.text, old.vector_store_id WHERE old.text GLOB {_HAS_CJK};
        INSERT INTO vector_store_chunks_fts (rowid, text, vector_store_id)
            VALUES (new.seq, new.text, new.vector_store_id);
        INSERT INTO vector_store_chunks_cjk (rowid, text, vector_store_id)
            SELECT new.seq, new.text, new.vector_store_id WHERE new.text GLOB {_HAS_CJK};
        UPDATE vector_stores SET chunk_version = chunk_version + 1
            WHERE id IN (old.vector_store_id, new.vector_store_id);
    END
    """,
    # The chunks already there.
    "INSERT INTO vector_store_chunks_fts (rowid, text, vector_store_id)"
    " SELECT seq, text, vector_store_id FROM vector_store_chunks",
    "INSERT INTO vector_store_chunks_cjk (rowid, text, vector_store_id)"
    f" SELECT seq, text, vector_store_id FROM vector_store_chunks WHERE text GLOB {_HAS_CJK}",
]

_SQLITE_DOWN = [
    "DROP TRIGGER vector_store_chunks_updated",
    "DROP TRIGGER vector_store_chunks_deleted",
    "DROP TRIGGER vector_store_chunks_inserted",
    "DROP TABLE vector_store_chunks_cjk",
    "DROP TABLE vector_store_chunks_fts",
]

_POSTGRESQL_UP = [
    f"""
    CREATE FUNCTION assistd_chunk_terms(text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, regexp_replace($1, '([{_CJK_CLASS}])', ' \\1 ', 'g')) $$
    """,
    # The lexemes are stored, not computed in an expression index: checking a match would then parse the
    # chunk's text again (tens of microseconds a chunk), and the planner, which does not count that
    # cost, reads common terms so.
    """
    CREATE TABLE vector_store_chunks_fts (
        seq bigint PRIMARY KEY,
        vector_store_id varchar(64) NOT NULL,
        terms tsvector NOT NULL
    )
    """,
    # The chunks already there (before the index: building it once is cheaper than growing it).
    "INSERT INTO vector_store_chunks_fts"
    " SELECT seq, vector_store_id, assistd_chunk_terms(text) FROM vector_store_chunks",
    "CREATE INDEX ix_vector_store_chunks_fts_terms ON vector_store_chunks_fts USING gin (terms)",
    "CREATE INDEX ix_vector_store_chunks_fts_store ON vector_store_chunks_fts (vector_store_id)",
    # Once per statement rather than per row, so that deleting a file's or a store's chunks updates each
    # store once. Stores are locked in id order, so that two statements that change chunks of the same
    # stores (deleting a file takes it out of every store) cannot deadlock.
    """
    CREATE FUNCTION assistd_chunks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        changed text[];
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            DELETE FROM vector_store_chunks_fts WHERE seq IN (SELECT seq FROM old_chunks);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO vector_store_chunks_fts
                SELECT seq, vector_store_id, assistd_chunk_terms(text) FROM new_chunks;
        END IF;
        IF TG_OP = 'INSERT' THEN
            changed := ARRAY(SELECT DISTINCT vector_store_id FROM new_chunks);
        ELSIF TG_OP = 'DELETE' THEN
            changed := ARRAY(SELECT DISTINCT vector_store_id FROM old_chunks);
        ELSE
            changed := ARRAY(
                SELECT vector_store_id FROM old_chunks UNION SELECT vector_store_id FROM new_chunks
            );
        END IF;
        PERFORM 1 FROM vector_stores WHERE id = ANY (changed) ORDER BY id FOR UPDATE;
        UPDATE vector_stores SET chunk_version = chunk_version + 1 WHERE id = ANY (changed);
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER vector_store_chunks_inserted AFTER INSERT ON vector_store_chunks"
    " REFERENCING NEW TABLE AS new_chunks FOR EACH STATEMENT EXECUTE FUNCTION assistd_chunks_changed()",
    "CREATE TRIGGER vector_store_chunks_deleted AFTER DELETE ON vector_store_chunks"
    " REFERENCING OLD TABLE AS old_chunks FOR EACH STATEMENT EXECUTE FUNCTION assistd_chunks_changed()",
    "CREATE TRIGGER vector_store_chunks_updated AFTER UPDATE ON vector_store_chunks"
    " REFERENCING OLD TABLE AS old_chunks NEW TABLE AS new_chunks"
    " FOR EACH STATEMENT EXECUTE FUNCTION assistd_chunks_changed()",
]

_POSTGRESQL_DOWN = [
    "DROP TRIGGER vector_store_chunks_updated ON vector_store_chunks",
    "DROP TRIGGER vector_store_chunks_deleted ON vector_store_chunks",
    "DROP TRIGGER vector_store_chunks_inserted ON vector_store_chunks",
    "DROP FUNCTION assistd_chunks_changed()",
    "DROP TABLE vector_store_chunks_fts",
    "DROP FUNCTION assistd_chunk_terms(text)",
]


def _check_sqlite() -> None:
    # Python's own builds and the usual distributions' have FTS5; trigrams came with SQLite 3.34, and
    # DROP COLUMN (the downgrade) with 3.35.
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise RuntimeError(f"assistd needs SQLite 3.35 or later; this is {sqlite3.sqlite_version}")
    options = {row[0] for row in op.get_bind().exec_driver_sql("PRAGMA compile_options")}
    if "ENABLE_FTS5" not in options:
        raise RuntimeError("assistd needs an SQLite built with FTS5 (SQLITE_ENABLE_FTS5)")


def upgrade() -> None:
    op.add_column(
        "vector_stores", sa.Column("chunk_version", sa.BigInteger(), nullable=False, server_default="0")
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _check_sqlite()
        statements = _SQLITE_UP
    else:
        statements = _POSTGRESQL_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = _SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else _POSTGRESQL_DOWN
    for statement in statements:
        op.execute(statement)
    # Not a batch operation: rebuilding vector_stores on SQLite would drop a table other tables refer to.
    op.execute("ALTER TABLE vector_stores DROP COLUMN chunk_version")

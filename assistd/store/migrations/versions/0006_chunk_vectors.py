"""pgvector on PostgreSQL: each chunk's embedding as a ``vector`` too, so that search ranks by vector
inside the database instead of in every process's memory.

Only where the ``vector`` extension can be created (pgvector installed on the server, and the
extension already created in this database or this role allowed to create it); anywhere else
(SQLite, PostgreSQL without pgvector) this migration does nothing, and search keeps the vectors of the
stores it searches in memory (``assistd/retrieval/search.py``). Search looks for the column, not for
the extension: pgvector installed after this migration ran is not used until this migration runs again.

``vector_store_chunks.embedding_vec`` (type ``vector`` without a dimension: the embedding model is
pluggable, 384 dimensions for the embedded one, others upstream) is the ``embedding`` bytes (float32,
little-endian) decoded exactly, bit for bit: ``assistd_float32_vector(bytea)``. A row trigger fills it
on every insert and on every update of ``embedding``, so no statement that writes chunks has to know
about it. Bytes that are no vector pgvector accepts (none, not a multiple of 4, a NaN or infinity, more
than 16,000 dimensions) give NULL: such a chunk is found by its words only. The column is not declared
in ``assistd/store/tables.py``, which declares what every database has.

No vector index. Search ranks exactly: a scan of the searched stores' chunks (found by the index on
the store), ordered by cosine distance. An HNSW index needs a fixed dimension (an expression index per
dimension would do), but it is one graph over every store's chunks: pgvector (before 0.8) returns at
most ``hnsw.ef_search`` rows from it and filters them by store and attributes afterwards, so a search
of a small store in a large database would find few or none of its chunks. An exact scan is right for
every store and filter, and BENCHMARKS.md has what it costs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pgvector's largest vector.
_MAX_DIMENSIONS = 16_000

_UP = [
    "ALTER TABLE vector_store_chunks ADD COLUMN embedding_vec vector",
    # Kept in the row (compressed if that helps, out of line only as a last resort): the search scan
    # reads every vector of a store, and an out-of-line one costs a lookup in the TOAST table each. The
    # embedding bytes (and a long text), which a scan does not read, go out of line first.
    "ALTER TABLE vector_store_chunks ALTER COLUMN embedding_vec SET STORAGE MAIN",
    # IEEE 754 single precision decoded with integer and float8 arithmetic, which is exact: sign, 8
    # bits of exponent, 23 of mantissa; an exponent of 0 is a subnormal, of 255 an infinity or a NaN.
    # SQL rather than PL/pgSQL: about 0.1 ms for 384 dimensions.
    f"""
    CREATE FUNCTION assistd_float32_vector(bytea) RETURNS vector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN length($1) = 0 OR length($1) % 4 <> 0 OR length($1) > {4 * _MAX_DIMENSIONS}
            OR bool_or(exponent = 255) THEN NULL
        ELSE array_agg(
            sign * CASE
                WHEN exponent = 0 THEN mantissa * 2.0::float8 ^ -149
                ELSE (mantissa + 8388608) * 2.0::float8 ^ (exponent - 150)
            END
            ORDER BY i
        )::real[]::vector
    END
    FROM (
        SELECT
            i,
            CASE WHEN get_byte($1, 4 * i + 3) >= 128 THEN -1 ELSE 1 END AS sign,
            (get_byte($1, 4 * i + 3) & 127) * 2 + (get_byte($1, 4 * i + 2) >> 7) AS exponent,
            ((get_byte($1, 4 * i + 2) & 127) << 16) + (get_byte($1, 4 * i + 1) << 8)
                + get_byte($1, 4 * i) AS mantissa
        FROM generate_series(0, length($1) / 4 - 1) AS i
    ) AS parts
    $$
    """,
    # The chunks already there. Not an update of the chunks as far as the full-text index is concerned:
    # its trigger (migration 0005) would compute every chunk's terms again. The table is locked by the
    # ALTER TABLE above until the upgrade commits.
    "ALTER TABLE vector_store_chunks DISABLE TRIGGER vector_store_chunks_updated",
    "UPDATE vector_store_chunks SET embedding_vec = assistd_float32_vector(embedding)",
    "ALTER TABLE vector_store_chunks ENABLE TRIGGER vector_store_chunks_updated",
    """
    CREATE FUNCTION assistd_chunk_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.embedding_vec := assistd_float32_vector(NEW.embedding);
        RETURN NEW;
    END
    $$
    """,
    "CREATE TRIGGER vector_store_chunks_vector BEFORE INSERT OR UPDATE OF embedding ON vector_store_chunks"
    " FOR EACH ROW EXECUTE FUNCTION assistd_chunk_vector()",
]

_DOWN = [
    "DROP TRIGGER IF EXISTS vector_store_chunks_vector ON vector_store_chunks",
    "DROP FUNCTION IF EXISTS assistd_chunk_vector()",
    "ALTER TABLE vector_store_chunks DROP COLUMN IF EXISTS embedding_vec",
    "DROP FUNCTION IF EXISTS assistd_float32_vector(bytea)",
    # The extension stays: other databases' objects, or the administrator's, may use it.
]


def _vector_extension() -> bool:
    """Whether the ``vector`` extension is in this database, created here if need be."""
    bind = op.get_bind()
    try:
        # A failed statement aborts a PostgreSQL transaction: the savepoint keeps the upgrade going.
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError:
        return False  # not installed on the server, or not this role's to create
    return True


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not _vector_extension():
        return
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _DOWN:
        op.execute(statement)

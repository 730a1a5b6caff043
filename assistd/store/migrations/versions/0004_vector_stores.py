"""Vector stores, their files and file batches, and the chunks of their files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


def _project() -> sa.Column[str]:
    return sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False)


def _store() -> sa.Column[str]:
    return sa.Column("vector_store_id", sa.String(64), sa.ForeignKey("vector_stores.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("expires_after", sa.JSON()),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("last_active_at", sa.BigInteger()),
    )
    op.create_index("ix_vector_stores_project_order", "vector_stores", ["project_id", "created_at", "seq"])
    op.create_table(
        "vector_store_files",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False),
        _project(),
        _store(),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.JSON()),
        sa.Column("chunking_strategy", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON()),
        sa.Column("content", sa.Text()),
        sa.UniqueConstraint("vector_store_id", "id", name="uq_vector_store_files_store_file"),
    )
    op.create_index(
        "ix_vector_store_files_store_order", "vector_store_files", ["vector_store_id", "created_at", "seq"]
    )
    op.create_index("ix_vector_store_files_batch", "vector_store_files", ["batch_id"])
    op.create_index("ix_vector_store_files_status", "vector_store_files", ["status"])
    op.create_table(
        "vector_store_file_batches",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        _store(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "vector_store_chunks",
        _seq(),
        _project(),
        _store(),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_vector_store_chunks_store_file",
        "vector_store_chunks",
        ["vector_store_id", "file_id", "chunk_index"],
    )


def downgrade() -> None:
    op.drop_table("vector_store_chunks")
    op.drop_table("vector_store_file_batches")
    op.drop_table("vector_store_files")
    op.drop_table("vector_stores")

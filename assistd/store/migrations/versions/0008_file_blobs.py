"""File contents in the database, for servers whose processes share no disk.

``file_blobs`` holds each file's content under its id in parts of at most 1 MiB (``part`` counts from
0; an empty file is one empty part), written in one transaction with the upload. It is the default
blob store on PostgreSQL, where every API node and worker reads the same database; the table is made
on SQLite too, where it stays empty (files live under the data dir there).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_blobs",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_blobs")

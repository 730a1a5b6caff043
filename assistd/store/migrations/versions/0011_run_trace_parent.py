"""The trace context of the request that queued a run, for the span of its execution to link to.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("trace_parent", sa.String(64)))


def downgrade() -> None:
    op.drop_column("runs", "trace_parent")

"""Run events in the database, for streams across processes; and a run's takeover count.

``run_events`` holds each run's events in order (``seq`` counts from 1 per run). On PostgreSQL every
process that streams a run reads them from here, woken by ``NOTIFY``, so a client may stream from one
node a run that a worker on another node executes, and resume a broken stream where it stopped. The
embedded (SQLite) mode hands events over in memory and leaves this table empty. Rows go with their
thread, and are deleted some time after they were written (``ASSISTD_EVENT_RETENTION_SECONDS``).

``runs.attempts`` counts how many times a worker took over the run after the worker executing it
died; past a limit the run fails instead of being tried again (a run that kills its worker every
time must not kill them all).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_events",
        # No foreign key: its check would lock the run's row, which the run's own transactions hold
        # while their events are written (see assistd/store/run_events.py).
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("detailed_data", sa.Text()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_run_events_created_at", "run_events", ["created_at"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("attempts")
    op.drop_index("ix_run_events_created_at", table_name="run_events")
    op.drop_table("run_events")

"""Runs and run steps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


def _project() -> sa.Column[str]:
    return sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("thread_id", sa.String(64), sa.ForeignKey("threads.id"), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("required_action", sa.JSON()),
        sa.Column("last_error", sa.JSON()),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("started_at", sa.BigInteger()),
        sa.Column("cancelled_at", sa.BigInteger()),
        sa.Column("failed_at", sa.BigInteger()),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("incomplete_details", sa.JSON()),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON()),
        sa.Column("usage", sa.JSON()),
        sa.Column("temperature", sa.Float()),
        sa.Column("top_p", sa.Float()),
        sa.Column("max_prompt_tokens", sa.Integer()),
        sa.Column("max_completion_tokens", sa.Integer()),
        sa.Column("truncation_strategy", sa.JSON()),
        sa.Column("tool_choice", sa.JSON()),
        sa.Column("parallel_tool_calls", sa.Boolean(), nullable=False),
        sa.Column("response_format", sa.JSON()),
        sa.Column("reasoning_effort", sa.String(16)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float()),
    )
    op.create_index("ix_runs_thread_order", "runs", ["thread_id", "created_at", "seq"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "run_steps",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step_details", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.JSON()),
        sa.Column("expired_at", sa.BigInteger()),
        sa.Column("cancelled_at", sa.BigInteger()),
        sa.Column("failed_at", sa.BigInteger()),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("usage", sa.JSON()),
    )
    op.create_index("ix_run_steps_run_order", "run_steps", ["run_id", "created_at", "seq"])


def downgrade() -> None:
    op.drop_table("run_steps")
    op.drop_table("runs")

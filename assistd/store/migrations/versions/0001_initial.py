"""Projects, assistants, threads and messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


def _project() -> sa.Column[str]:
    return sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False)


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(projects, [{"id": "proj_default", "name": "default", "created_at": 0}])

    op.create_table(
        "assistants",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text()),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("tool_resources", sa.JSON()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("temperature", sa.Float()),
        sa.Column("top_p", sa.Float()),
        sa.Column("response_format", sa.JSON()),
        sa.Column("reasoning_effort", sa.String(16)),
    )
    op.create_index("ix_assistants_project_order", "assistants", ["project_id", "created_at", "seq"])

    op.create_table(
        "threads",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("tool_resources", sa.JSON()),
        sa.Column("metadata", sa.JSON()),
    )

    op.create_table(
        "messages",
        _seq(),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        _project(),
        sa.Column("thread_id", sa.String(64), sa.ForeignKey("threads.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("attachments", sa.JSON()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("assistant_id", sa.String(64)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("completed_at", sa.BigInteger()),
        sa.Column("incomplete_at", sa.BigInteger()),
        sa.Column("incomplete_details", sa.JSON()),
    )
    op.create_index("ix_messages_thread_order", "messages", ["thread_id", "created_at", "seq"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("threads")
    op.drop_table("assistants")
    op.drop_table("projects")

"""The database schema. Migrations in ``migrations/versions`` must produce exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# A monotonically increasing surrogate key. Lists order by (created_at, seq): created_at has one-second
# resolution, seq breaks the ties so that cursors walk every object exactly once.
SeqType = BigInteger().with_variant(Integer, "sqlite")

DEFAULT_PROJECT_ID = "proj_default"


def _seq() -> Column[int]:
    return Column("seq", SeqType, primary_key=True, autoincrement=True)


def _project() -> Column[str]:
    return Column("project_id", String(64), ForeignKey("projects.id"), nullable=False)


projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

assistants = Table(
    "assistants",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("created_at", BigInteger, nullable=False),
    Column("name", Text),
    Column("description", Text),
    Column("model", Text, nullable=False),
    Column("instructions", Text),
    Column("tools", JSON, nullable=False),
    Column("tool_resources", JSON),
    Column("metadata", JSON),
    Column("temperature", Float),
    Column("top_p", Float),
    Column("response_format", JSON),
    Column("reasoning_effort", String(16)),
    Index("ix_assistants_project_order", "project_id", "created_at", "seq"),
)

threads = Table(
    "threads",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("created_at", BigInteger, nullable=False),
    Column("tool_resources", JSON),
    Column("metadata", JSON),
)

messages = Table(
    "messages",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("thread_id", String(64), ForeignKey("threads.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("content", JSON, nullable=False),
    Column("attachments", JSON),
    Column("metadata", JSON),
    Column("assistant_id", String(64)),
    Column("run_id", String(64)),
    Column("completed_at", BigInteger),
    Column("incomplete_at", BigInteger),
    Column("incomplete_details", JSON),
    Index("ix_messages_thread_order", "thread_id", "created_at", "seq"),
)

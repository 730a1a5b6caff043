"""The database schema. Migrations in ``migrations/versions`` must produce exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    Index("uq_projects_name", "name", unique=True),
)

# API keys: each lets its holder act in one project. Only a hash of the secret is kept (secrets are
# random, 256 bits: SHA-256 suffices, and a lookup by it is one index probe).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=False),
    Column("name", String(256)),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),  # the secret's start, to tell keys apart
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger),
    Column("revoked_at", BigInteger),
)

# Responses to POSTs sent with an Idempotency-Key (hashed with the caller's API key), for their retries.
# ``status`` is null while the first request is still being served.
idempotent_requests = Table(
    "idempotent_requests",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # of method, path, query and body
    Column("status", Integer),
    Column("content_type", String(128)),
    Column("body", LargeBinary),
    Column("created_at", Float, nullable=False),
    Index("ix_idempotent_requests_created_at", "created_at"),
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

runs = Table(
    "runs",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("thread_id", String(64), ForeignKey("threads.id"), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("required_action", JSON),
    Column("last_error", JSON),
    Column("expires_at", BigInteger),
    Column("started_at", BigInteger),
    Column("cancelled_at", BigInteger),
    Column("failed_at", BigInteger),
    Column("completed_at", BigInteger),
    Column("incomplete_details", JSON),
    Column("model", Text, nullable=False),
    Column("instructions", Text, nullable=False),
    Column("tools", JSON, nullable=False),
    Column("metadata", JSON),
    Column("usage", JSON),
    Column("temperature", Float),
    Column("top_p", Float),
    Column("max_prompt_tokens", Integer),
    Column("max_completion_tokens", Integer),
    Column("truncation_strategy", JSON),
    Column("tool_choice", JSON),
    Column("parallel_tool_calls", Boolean, nullable=False),
    Column("response_format", JSON),
    Column("reasoning_effort", String(16)),
    # Not on the wire: which worker holds the run, until when (Unix seconds, fractional).
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),
    # Not on the wire: how many times a worker took the run over from a worker that died.
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Not on the wire: the W3C traceparent of the request that queued the run (created it, or gave it
    # its tool outputs), when tracing is on; the span of the run's execution links to it.
    Column("trace_parent", String(64)),
    Index("ix_runs_thread_order", "thread_id", "created_at", "seq"),
    Index("ix_runs_status", "status"),
)

# A run's events in order, for streams served by another process than the run's worker (PostgreSQL;
# see migration 0007). ``detailed_data``: the event's form with file_search results' text, if it differs.
run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String(64), primary_key=True),  # no foreign key: see migration 0007
    Column("seq", Integer, primary_key=True),
    Column("event", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("detailed_data", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_run_events_created_at", "created_at"),
)

run_steps = Table(
    "run_steps",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("run_id", String(64), ForeignKey("runs.id"), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("step_details", JSON, nullable=False),
    Column("last_error", JSON),
    Column("expired_at", BigInteger),
    Column("cancelled_at", BigInteger),
    Column("failed_at", BigInteger),
    Column("completed_at", BigInteger),
    Column("metadata", JSON),
    Column("usage", JSON),
    Index("ix_run_steps_run_order", "run_id", "created_at", "seq"),
)

files = Table(
    "files",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("created_at", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("filename", Text, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", BigInteger),
    Index("ix_files_project_order", "project_id", "created_at", "seq"),
)

# File contents in the database (``store.blobs.PostgresBlobStore``): ``key`` (the file id) in parts of
# at most ``CHUNK_BYTES`` each, numbered from 0; an empty file is one empty part. See migration 0008.
file_blobs = Table(
    "file_blobs",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

vector_stores = Table(
    "vector_stores",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("created_at", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("metadata", JSON),
    Column("expires_after", JSON),
    Column("expires_at", BigInteger),
    Column("last_active_at", BigInteger),
    # Not on the wire: goes up whenever chunks of the store are written (triggers of migration 0005), so
    # that search can keep the store's vectors in memory and know when to read them again.
    Column("chunk_version", BigInteger, nullable=False, server_default="0"),
    Index("ix_vector_stores_project_order", "project_id", "created_at", "seq"),
)

# A file in a vector store. Its id on the wire is the file's id, so ``id`` is unique per store only.
vector_store_files = Table(
    "vector_store_files",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False),
    _project(),
    Column("vector_store_id", String(64), ForeignKey("vector_stores.id"), nullable=False),
    Column("batch_id", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("usage_bytes", BigInteger, nullable=False),
    Column("last_error", JSON),
    Column("chunking_strategy", JSON, nullable=False),
    Column("attributes", JSON),
    Column("content", Text),  # the extracted text, once indexed: what the content endpoint returns
    UniqueConstraint("vector_store_id", "id", name="uq_vector_store_files_store_file"),
    Index("ix_vector_store_files_store_order", "vector_store_id", "created_at", "seq"),
    Index("ix_vector_store_files_batch", "batch_id"),
    Index("ix_vector_store_files_status", "status"),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    _project(),
    Column("vector_store_id", String(64), ForeignKey("vector_stores.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled", Boolean, nullable=False),
)

# The searchable pieces of a vector store's files: text, where it sits in the extracted text, and its
# embedding (float32, little-endian). Their text has a full-text index that differs by database and is
# not declared here (FTS5 tables on SQLite, a table of tsvectors on PostgreSQL): see migration 0005.
vector_store_chunks = Table(
    "vector_store_chunks",
    metadata,
    _seq(),
    _project(),
    Column("vector_store_id", String(64), ForeignKey("vector_stores.id"), nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("start_offset", Integer, nullable=False),
    Column("end_offset", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Index("ix_vector_store_chunks_store_file", "vector_store_id", "file_id", "chunk_index"),
)

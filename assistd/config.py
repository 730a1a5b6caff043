"""All settings in one place. Every value can be set with an ``ASSISTD_*`` environment variable."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("assistd", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTD_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded SQLite database and stored files live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; overrides the embedded SQLite database "
        "(e.g. postgresql+asyncpg://user@host/db).",
    )
    blob_store: Literal["auto", "local", "postgres", "s3"] = Field(
        default="auto",
        description="Where file contents live: 'local' (under the data dir, for one machine), 'postgres' "
        "(in the database, which every node sharing it reaches), 's3' (an S3-compatible bucket, "
        "ASSISTD_S3_*; needs the s3 extra). 'auto': postgres when the database is PostgreSQL, else local.",
    )
    s3_bucket: str | None = Field(
        default=None,
        description="The bucket of the s3 blob store (required with it). Credentials come from the "
        "standard AWS sources: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
        "AWS_PROFILE with ~/.aws/credentials and ~/.aws/config, or the instance's role.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The endpoint of an S3-compatible server (MinIO, Ceph, R2, ...), addressed path-style "
        "(endpoint/bucket/key). Unset: AWS S3.",
    )
    s3_prefix: str = Field(
        default="",
        description="Put before each object's name, which is the file id; e.g. 'assistd/' keeps the files "
        "in that folder of the bucket.",
    )
    s3_region: str | None = Field(
        default=None,
        description="The bucket's region. Unset: AWS_REGION or AWS_DEFAULT_REGION, or the AWS config file.",
    )
    api_keys: str = Field(
        default="",
        description="Comma-separated static API keys. Empty: open mode, any bearer key is accepted.",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="The key of /v1/organization/... (projects and their API keys over HTTP, as OpenAI's "
        "Admin API). Unset: key management is the CLI's alone.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="'json': one JSON object per log line (time, level, logger, message, request_id, "
        "run_id), for log collectors.",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest JSON request body accepted; larger bodies get 413.",
    )
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Largest file accepted by POST /v1/files; larger get 413.",
    )
    default_model: str | None = Field(
        default=None,
        description="The model that answers model names no route maps: a configured model name, "
        "'scripted' (the built-in deterministic model) or a path to a .gguf file. Unset: the embedded "
        "SmolLM2 model, or with ASSISTD_UPSTREAM_BASE_URL the requested name, passed to the upstream.",
    )
    config: Path | None = Field(
        default=None,
        description="A TOML file of model backends and routes (see docs/backends.md).",
    )
    upstream_base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible server (…/v1) that becomes the default backend.",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None, description="The API key assistd sends to ASSISTD_UPSTREAM_BASE_URL."
    )
    embeddings_base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible server (…/v1) whose /embeddings replaces the embedded "
        "multilingual-e5-small model.",
    )
    embeddings_api_key: SecretStr | None = Field(default=None, description="The key for that server.")
    embeddings_model: str = Field(
        default="text-embedding-3-small", description="The model id sent to the embeddings server."
    )
    embeddings_dimensions: int = Field(
        default=1536, ge=1, description="The dimensions of that model's embeddings."
    )
    strict_models: bool = Field(
        default=False,
        description="Answer 404 model_not_found for model names no route maps, instead of using the "
        "default model.",
    )
    run_ttl_seconds: int = Field(default=600, ge=1, description="A run expires this long after creation.")
    rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        description="Requests each API key may make per minute in each process (bursts up to as many); "
        "over it, 429 with retry-after. 0: no limit.",
    )
    max_active_runs: int = Field(
        default=0,
        ge=0,
        description="Runs each project may have queued, in progress or waiting for tool outputs at once; "
        "another gets 429 with retry-after. 0: no limit.",
    )
    worker: bool = Field(
        default=True,
        description="Execute runs in this server process. Off (serve --no-worker): the node only serves "
        "the API, and `assistd worker` processes sharing its PostgreSQL execute the runs.",
    )
    worker_concurrency: int = Field(default=64, ge=1, description="Runs executed at once by this process.")
    run_max_takeovers: int = Field(
        default=2,
        ge=0,
        description="How many times a run whose worker died (or shut down) is taken over by another "
        "worker, its unfinished turn done again; after that it fails.",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM, how long runs in progress may take to finish before they are handed to "
        "another worker (or to this server's next start).",
    )
    event_retention_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="PostgreSQL: how long a run's events are kept for streams that reconnect.",
    )
    run_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a worker's claim on a run lasts without renewal; a run whose worker died "
        "is recovered within this time.",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker looks for runs it was not told about."
    )
    poll_after_ms: int = Field(
        default=100, ge=0, description="The openai-poll-after-ms hint sent with runs to polling clients."
    )
    stream_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A streamed run that has sent nothing for this long gets an SSE comment, so that "
        "proxies do not close the idle connection while the model thinks.",
    )
    auto_migrate: bool = Field(default=True, description="Apply database migrations at start.")
    db_pool_size: int = Field(default=10, ge=1, description="Connections per process (PostgreSQL).")
    # code_interpreter: one sandboxed Python kernel per thread (docs/code-interpreter.md).
    code_python: Path | None = Field(
        default=None,
        description="The Python the code_interpreter kernels run (it needs ipykernel); its installation "
        "is mounted read-only in the sandbox. Unset: the server's own interpreter.",
    )
    code_wall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Wall-clock time one code_interpreter call may take; then it is interrupted, and its "
        "kernel restarted if it does not stop.",
    )
    code_cpu_seconds: int = Field(
        default=600, ge=1, description="CPU seconds each process of a kernel may use in its lifetime."
    )
    code_memory_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        description="Address space each process of a kernel may map (RLIMIT_AS).",
    )
    code_processes: int = Field(
        default=64, ge=16, description="Processes and threads a kernel may run at once, itself included."
    )
    code_max_file_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="Largest file code may write (RLIMIT_FSIZE)."
    )
    code_max_output_file_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Files in /mnt/data larger than this are not returned from a call (the logs say so).",
    )
    code_max_output_files: int = Field(
        default=20, ge=0, description="Files returned from one call at most (the logs name the rest)."
    )
    code_max_log_chars: int = Field(
        default=100_000,
        ge=1000,
        description="Longest log text of one call; the middle of longer output is cut.",
    )
    code_idle_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="A session unused for this long ends: its kernel is stopped and its files deleted.",
    )
    code_max_kernels: int = Field(
        default=8,
        ge=1,
        description="Kernels alive at once; starting another stops the least recently used idle one.",
    )
    code_sandbox_uid: int = Field(
        default=65534,
        ge=1,
        description="The host user id (and group id) kernels run as when assistd runs as root.",
    )
    code_unsafe_no_sandbox: bool = Field(
        default=False,
        description="UNSAFE: run code_interpreter kernels without bubblewrap, as the server's own user "
        "with full access to its files and network. Only for a trusted single user.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @cached_property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'assistd.db'}"

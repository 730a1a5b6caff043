"""The ASGI application: wiring of settings, database, middleware, error handlers and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from assistd import __version__, playground, tracing
from assistd.api import (
    assistants,
    chat,
    embeddings,
    files,
    health,
    messages,
    models,
    organization,
    runs,
    threads,
    vector_stores,
)
from assistd.api.deps import check_path_ids
from assistd.api.errors import install_error_handlers
from assistd.api.idempotency import IdempotentRequests
from assistd.api.middleware import RequestGuard, RequestMetrics
from assistd.backends.embeddings import EmbeddingBackend, LocalEmbeddings, UpstreamEmbeddings
from assistd.backends.routing import ModelRouter
from assistd.backends.routing_config import ConfigError
from assistd.config import Settings
from assistd.retrieval.indexer import Indexer
from assistd.runs.events import EventBus
from assistd.runs.executor import Engine
from assistd.runs.pg_events import PgEventBus
from assistd.runs.runtime import Runtime
from assistd.runs.worker import Worker
from assistd.sandbox import CodeSandbox
from assistd.services.api_keys import ApiKeys
from assistd.services.limits import RequestRate
from assistd.store import migrate
from assistd.store.blob_stores import blob_store_kind, open_blob_store
from assistd.store.database import Database, is_sqlite

logger = logging.getLogger("assistd")

UPLOAD_OVERHEAD_BYTES = 64 * 1024


@asynccontextmanager
async def running_engine(
    settings: Settings, router: ModelRouter, embedder: EmbeddingBackend
) -> AsyncIterator[Engine]:
    """What executes runs and serves the API, opened and (at the end of the block) closed: the database,
    file storage, the event bus, the sandbox. Shared by ``serve`` and ``worker``."""
    tracing.setup()
    database = Database.from_url(settings.effective_database_url, pool_size=settings.db_pool_size)
    if settings.auto_migrate:
        await migrate.upgrade(database)
    blobs = await open_blob_store(settings, database)
    # Kernels start on a run's first code_interpreter call; the sandbox says then if it cannot.
    sandbox = CodeSandbox(settings)
    # On PostgreSQL other processes may serve the streams of this one's runs, and execute its requests'.
    bus = (
        EventBus()
        if is_sqlite(settings.effective_database_url)
        else PgEventBus(database, retention_seconds=settings.event_retention_seconds)
    )
    engine = Engine(
        database=database,
        bus=bus,
        models=router,
        embeddings=embedder,
        blobs=blobs,
        sandbox=sandbox,
        max_file_bytes=settings.max_file_bytes,
        max_takeovers=settings.run_max_takeovers,
    )
    await bus.start()
    await sandbox.start()
    try:
        yield engine
    finally:
        # The worker has stopped: what its executors published is written before the bus goes.
        await bus.close()
        await sandbox.close()
        await blobs.close()
        await router.aclose()
        await embedder.aclose()
        await database.close()
        await tracing.shutdown()  # last: the spans of everything above are exported


def new_worker(engine: Engine, settings: Settings, concurrency: int | None = None) -> Worker:
    return Worker(
        engine,
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=settings.run_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Built now, so that a configuration error stops the start with its message (ConfigError).
    router = ModelRouter.from_settings(settings)
    embedder = embeddings_backend(settings)
    blob_store_kind(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_engine(settings, router, embedder) as engine:
            # serve --no-worker: this node only serves the API; `assistd worker` processes run the runs.
            worker = new_worker(engine, settings) if settings.worker else None
            app.state.api_keys = keys = ApiKeys(engine.database, settings.api_key_set)
            app.state.request_rate = (
                RequestRate(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
            )
            if await keys.is_open():
                logger.warning(
                    "No API key exists: open mode, any bearer key (or none) is accepted. Make one with "
                    "`assistd keys create --project NAME` (or set ASSISTD_API_KEYS) before exposing this "
                    "server to anyone."
                )
            app.state.database = engine.database
            app.state.blobs = engine.blobs
            app.state.indexer = indexer = Indexer(engine.database, engine.blobs, embedder)
            app.state.models = router
            app.state.embeddings = embedder
            app.state.runtime = Runtime(
                engine=engine,
                run_ttl_seconds=settings.run_ttl_seconds,
                max_active_runs=settings.max_active_runs,
            )
            if worker is not None:
                worker.start()
            await indexer.start()
            try:
                yield
            finally:
                await indexer.stop()
                if worker is not None:
                    await worker.stop(settings.shutdown_grace_seconds)

    app = FastAPI(
        title="assistd",
        version=__version__,
        summary="A self-hosted server for OpenAI's Assistants API v2.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Inside the guard: bodies it lets through are small enough to hold and fingerprint.
    app.add_middleware(IdempotentRequests, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        # Uploads are multipart: the file plus a few small fields.
        upload_paths=frozenset({"/v1/files"}),
        max_upload_bytes=settings.max_file_bytes + UPLOAD_OVERHEAD_BYTES,
    )
    # Outermost: requests refused by the guard are counted too.
    app.add_middleware(RequestMetrics)

    # Each resource's router straight into the app, not into a /v1 router first: this FastAPI matches a
    # request against every level of nesting again, which made routing a fifth of a polled GET's cost.
    # runs before threads: POST /threads/runs must not be taken for POST /threads/{thread_id}. Key
    # management (organization) takes OpenAI's Admin API shapes and its own key. chat first: routers are
    # tried in order, each route of each, and a relayed completion is on the path of the first token
    # (the four routers before it cost every completion about 0.1 ms of CPU); its one path is no one
    # else's.
    resources = (chat, assistants, runs, threads, messages, models, files, embeddings, vector_stores)
    for module in (*resources, organization):
        app.include_router(module.router, prefix="/v1", dependencies=[Depends(check_path_ids)])
    app.include_router(health.router)
    app.include_router(playground.router)
    return app


def embeddings_backend(settings: Settings) -> EmbeddingBackend:
    if settings.embeddings_base_url:
        key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
        try:
            return UpstreamEmbeddings(
                settings.embeddings_base_url,
                key,
                settings.embeddings_model,
                dimensions=settings.embeddings_dimensions,
            )
        except ValueError as error:
            raise ConfigError(f"ASSISTD_EMBEDDINGS_BASE_URL: {error}") from None
    return LocalEmbeddings()

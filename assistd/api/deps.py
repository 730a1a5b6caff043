"""Request dependencies: who is calling (their project) and the services bound to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assistd.backends.routing import ModelRouter
from assistd.config import Settings
from assistd.errors import AuthenticationFailed, NotFound
from assistd.ids import is_plausible_id
from assistd.runs.runtime import Runtime
from assistd.services.api_keys import ApiKeys
from assistd.services.assistants import AssistantService
from assistd.services.chat import ChatService
from assistd.services.embeddings import EmbeddingService
from assistd.services.files import FileService
from assistd.services.limits import RequestRate
from assistd.services.messages import MessageService
from assistd.services.runs import RunService
from assistd.services.scope import Scope
from assistd.services.threads import ThreadService
from assistd.services.vector_stores import VectorStoreService
from assistd.store.tables import DEFAULT_PROJECT_ID

# How errors name the object a path parameter refers to.
_PATH_KINDS = {
    "assistant_id": "assistant",
    "thread_id": "thread",
    "message_id": "message",
    "run_id": "run",
    "step_id": "run step",
    "file_id": "file",
    "vector_store_id": "vector store",
    "batch_id": "vector store file batch",
    "project_id": "project",
    "key_id": "API key",
}


async def check_path_ids(request: Request) -> None:
    """A path id that cannot be an id names no object: 404 before any query is made."""
    for name, value in request.path_params.items():
        if name in _PATH_KINDS and not is_plausible_id(value):
            raise NotFound(_PATH_KINDS[name], value)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def resolve_project(request: Request) -> str:
    """The project the request acts in: its key's. Open mode (no key exists) serves the default project."""
    keys: ApiKeys = request.app.state.api_keys
    if await keys.is_open():
        open_rate: RequestRate | None = request.app.state.request_rate
        if open_rate is not None:
            open_rate.take(bearer_token(request) or "")
        return DEFAULT_PROJECT_ID
    token = bearer_token(request)
    if token is None:
        raise AuthenticationFailed(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    project_id = await keys.project_of(token)
    if project_id is None:
        raise AuthenticationFailed(f"Incorrect API key provided: {_redact(token)}.", code="invalid_api_key")
    rate: RequestRate | None = request.app.state.request_rate
    if rate is not None:
        rate.take(token)  # only valid keys are counted (and kept track of)
    return project_id


def _redact(token: str) -> str:
    return f"{token[:3]}***{token[-4:]}" if len(token) > 10 else "***"


# Each route takes one service, and each service's dependency takes only the request: FastAPI solves
# every node of a dependency graph at a cost per node that a polled GET notices, so the graph is flat
# and the service functions call the plain functions below themselves.


async def request_scope(request: Request) -> Scope:
    """The caller's project (after authentication) and the database."""
    project_id = await resolve_project(request)
    return Scope(database=request.app.state.database, project_id=project_id)


def stores_in(request: Request, scope: Scope) -> VectorStoreService:
    """Vector stores: their own routes', and those that assistants, threads, messages and runs make
    (tool_resources, attachments)."""
    return VectorStoreService(scope, request.app.state.indexer.submit, request.app.state.embeddings)


async def vector_store_service(request: Request) -> VectorStoreService:
    return stores_in(request, await request_scope(request))


async def assistant_service(request: Request) -> AssistantService:
    scope = await request_scope(request)
    return AssistantService(scope, stores_in(request, scope))


async def thread_service(request: Request) -> ThreadService:
    scope = await request_scope(request)
    runtime: Runtime = request.app.state.runtime
    return ThreadService(scope, stores_in(request, scope), runtime.engine.sandbox)


async def message_service(request: Request) -> MessageService:
    scope = await request_scope(request)
    return MessageService(scope, stores_in(request, scope))


async def run_service(request: Request) -> RunService:
    scope = await request_scope(request)
    runtime: Runtime = request.app.state.runtime
    return RunService(scope, runtime, stores_in(request, scope))


async def chat_service(request: Request) -> ChatService:
    await resolve_project(request)  # chat completions store nothing, but the caller must be authenticated
    return ChatService(request.app.state.models)


async def model_router(request: Request) -> ModelRouter:
    await resolve_project(request)
    router: ModelRouter = request.app.state.models
    return router


async def file_service(request: Request) -> FileService:
    settings: Settings = request.app.state.settings
    scope = await request_scope(request)
    return FileService(scope, request.app.state.blobs, max_bytes=settings.max_file_bytes)


async def embedding_service(request: Request) -> EmbeddingService:
    await resolve_project(request)
    return EmbeddingService(request.app.state.embeddings)


Assistants = Annotated[AssistantService, Depends(assistant_service)]
Threads = Annotated[ThreadService, Depends(thread_service)]
Messages = Annotated[MessageService, Depends(message_service)]
Runs = Annotated[RunService, Depends(run_service)]
Chat = Annotated[ChatService, Depends(chat_service)]
Files = Annotated[FileService, Depends(file_service)]
Embeddings = Annotated[EmbeddingService, Depends(embedding_service)]
Models = Annotated[ModelRouter, Depends(model_router)]
VectorStores = Annotated[VectorStoreService, Depends(vector_store_service)]

"""Assistants: create, read, modify, delete, list."""

from __future__ import annotations

from typing import Any

from assistd.errors import InvalidRequest, NotFound
from assistd.ids import Prefix, new_id, now
from assistd.protocol.assistants import AssistantCreate, AssistantModify
from assistd.protocol.common import dump_response_format
from assistd.protocol.pagination import Page, PageRequest
from assistd.services.common import dump_request
from assistd.services.scope import Scope
from assistd.services.tool_resources import resource_transaction
from assistd.services.vector_stores import VectorStoreService
from assistd.store.repositories import AssistantRepository
from assistd.types import Assistant, AssistantDeleted

# What OpenAI reports for a field the client left out (or set to null).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
DEFAULT_RESPONSE_FORMAT = "auto"


class AssistantService:
    def __init__(self, scope: Scope, stores: VectorStoreService) -> None:
        self.scope = scope
        self.stores = stores

    async def create(self, request: AssistantCreate) -> Assistant:
        values = {
            "id": new_id(Prefix.ASSISTANT),
            "created_at": now(),
            "model": request.model,
            "name": request.name,
            "description": request.description,
            "instructions": request.instructions,
            "reasoning_effort": request.reasoning_effort,
            "tools": [dump_request(tool) for tool in request.tools],
            "metadata": request.metadata or {},
            "temperature": _or(request.temperature, DEFAULT_TEMPERATURE),
            "top_p": _or(request.top_p, DEFAULT_TOP_P),
            "response_format": dump_response_format(request.response_format) or DEFAULT_RESPONSE_FORMAT,
        }
        # One transaction: a vector store made by the helper exists only if the assistant does.
        async with resource_transaction(self.stores) as writer:
            values["tool_resources"] = await writer.tool_resources(request.tool_resources)
            return await AssistantRepository(writer.conn, self.scope.project_id).insert(values)

    async def get(self, assistant_id: str) -> Assistant:
        async with self.scope.database.read() as conn:
            return await AssistantRepository(conn, self.scope.project_id).require(assistant_id)

    async def modify(self, assistant_id: str, request: AssistantModify) -> Assistant:
        changes = _changes(request)
        async with resource_transaction(self.stores) as writer:
            if "tool_resources" in request.model_fields_set:
                changes["tool_resources"] = await writer.tool_resources(request.tool_resources)
            repository = AssistantRepository(writer.conn, self.scope.project_id)
            assistant = (
                await repository.update(assistant_id, changes)
                if changes
                else await repository.get(assistant_id)
            )
        if assistant is None:
            raise NotFound("assistant", assistant_id)
        return assistant

    async def delete(self, assistant_id: str) -> AssistantDeleted:
        async with self.scope.database.write() as conn:
            deleted = await AssistantRepository(conn, self.scope.project_id).delete(assistant_id)
        if not deleted:
            raise NotFound("assistant", assistant_id)
        return AssistantDeleted(id=assistant_id, object="assistant.deleted", deleted=True)

    async def list(self, page: PageRequest) -> Page[Assistant]:
        async with self.scope.database.read() as conn:
            return await AssistantRepository(conn, self.scope.project_id).page(page)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _changes(request: AssistantModify) -> dict[str, Any]:
    """The stored columns a modify request changes: only the fields it sent (tool_resources, which must
    be checked against the database, apart)."""
    sent = request.model_fields_set
    changes: dict[str, Any] = {}
    if "model" in sent:
        if request.model is None:
            raise InvalidRequest("Invalid 'model': expected a model name, but got null.", param="model")
        changes["model"] = request.model
    for field in ("name", "description", "instructions", "reasoning_effort"):
        if field in sent:
            changes[field] = getattr(request, field)
    if "tools" in sent:
        changes["tools"] = [dump_request(tool) for tool in request.tools or []]
    if "metadata" in sent:
        changes["metadata"] = request.metadata or {}
    if "temperature" in sent:
        changes["temperature"] = _or(request.temperature, DEFAULT_TEMPERATURE)
    if "top_p" in sent:
        changes["top_p"] = _or(request.top_p, DEFAULT_TOP_P)
    if "response_format" in sent:
        changes["response_format"] = dump_response_format(request.response_format) or DEFAULT_RESPONSE_FORMAT
    return changes

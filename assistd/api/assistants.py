"""/v1/assistants"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from assistd.api.deps import Assistants
from assistd.api.responses import PageQuery, json_response
from assistd.protocol.assistants import AssistantCreate, AssistantModify
from assistd.protocol.pagination import Page
from assistd.types import Assistant, AssistantDeleted

router = APIRouter(prefix="/assistants", tags=["assistants"])


@router.post("", response_model=Assistant)
async def create_assistant(body: AssistantCreate, service: Assistants) -> Response:
    return json_response(await service.create(body))


@router.get("", response_model=Page[Assistant])
async def list_assistants(page: PageQuery, service: Assistants) -> Response:
    return json_response(await service.list(page))


@router.get("/{assistant_id}", response_model=Assistant)
async def retrieve_assistant(assistant_id: str, service: Assistants) -> Response:
    return json_response(await service.get(assistant_id))


@router.post("/{assistant_id}", response_model=Assistant)
async def modify_assistant(assistant_id: str, body: AssistantModify, service: Assistants) -> Response:
    return json_response(await service.modify(assistant_id, body))


@router.delete("/{assistant_id}", response_model=AssistantDeleted)
async def delete_assistant(assistant_id: str, service: Assistants) -> Response:
    return json_response(await service.delete(assistant_id))

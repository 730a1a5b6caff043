"""/v1/threads/{thread_id}/messages"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from assistd.api.deps import Messages
from assistd.api.responses import PageQuery, json_response
from assistd.protocol.messages import MessageCreate, MessageModify
from assistd.protocol.pagination import Page
from assistd.types import Message, MessageDeleted

router = APIRouter(prefix="/threads/{thread_id}/messages", tags=["messages"])


@router.post("", response_model=Message)
async def create_message(thread_id: str, body: MessageCreate, service: Messages) -> Response:
    return json_response(await service.create(thread_id, body))


@router.get("", response_model=Page[Message])
async def list_messages(
    thread_id: str, page: PageQuery, service: Messages, run_id: str | None = None
) -> Response:
    return json_response(await service.list(thread_id, page, run_id=run_id))


@router.get("/{message_id}", response_model=Message)
async def retrieve_message(thread_id: str, message_id: str, service: Messages) -> Response:
    return json_response(await service.get(thread_id, message_id))


@router.post("/{message_id}", response_model=Message)
async def modify_message(thread_id: str, message_id: str, body: MessageModify, service: Messages) -> Response:
    return json_response(await service.modify(thread_id, message_id, body))


@router.delete("/{message_id}", response_model=MessageDeleted)
async def delete_message(thread_id: str, message_id: str, service: Messages) -> Response:
    return json_response(await service.delete(thread_id, message_id))

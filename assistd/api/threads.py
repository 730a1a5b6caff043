"""/v1/threads"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from assistd.api.deps import Threads
from assistd.api.responses import json_response
from assistd.protocol.threads import ThreadCreate, ThreadModify
from assistd.types import Thread, ThreadDeleted

router = APIRouter(prefix="/threads", tags=["threads"])


@router.post("", response_model=Thread)
async def create_thread(service: Threads, body: ThreadCreate | None = None) -> Response:
    # The body may be omitted entirely: an empty thread.
    return json_response(await service.create(body or ThreadCreate()))


@router.get("/{thread_id}", response_model=Thread)
async def retrieve_thread(thread_id: str, service: Threads) -> Response:
    return json_response(await service.get(thread_id))


@router.post("/{thread_id}", response_model=Thread)
async def modify_thread(thread_id: str, body: ThreadModify, service: Threads) -> Response:
    return json_response(await service.modify(thread_id, body))


@router.delete("/{thread_id}", response_model=ThreadDeleted)
async def delete_thread(thread_id: str, service: Threads) -> Response:
    return json_response(await service.delete(thread_id))

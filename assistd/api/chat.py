"""/v1/chat/completions."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from openai.types.chat import ChatCompletion

from assistd.api.deps import Chat
from assistd.api.disconnect import CLIENT_CLOSED_REQUEST, ClientDisconnected, until_disconnected
from assistd.api.errors import backend_error_body
from assistd.api.responses import json_response
from assistd.backends.base import BackendError
from assistd.protocol.chat import ChatCompletionCreate

router = APIRouter(tags=["chat"])
logger = logging.getLogger("assistd.api")

DONE = b"data: [DONE]\n\n"


def _data(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


@router.post("/chat/completions", response_model=ChatCompletion)
async def create_chat_completion(request: Request, body: ChatCompletionCreate, service: Chat) -> Response:
    chat = service.prepare(body)
    try:
        if not body.stream:
            return json_response(await until_disconnected(request, service.complete(chat)))

        chunks = service.chunks(chat)
        # The first chunk that depends on the model comes before the response starts, so that a model
        # that cannot answer at all (upstream down, rate limited) gets its HTTP status, not a 200.
        opening = [await anext(chunks)]
        try:
            opening.append(await until_disconnected(request, anext(chunks)))
        except StopAsyncIteration:
            pass
        except BaseException:
            await chunks.aclose()
            raise
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return StreamingResponse(
        _relay(opening, chunks),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _relay(
    opening: list[dict[str, Any]], chunks: AsyncGenerator[dict[str, Any], None]
) -> AsyncIterator[bytes]:
    try:
        for chunk in opening:
            yield _data(chunk)
        async for chunk in chunks:
            yield _data(chunk)
    except BackendError as error:
        # Mid-stream: the status line is long gone; OpenAI sends the error as a data line.
        yield b"data: " + json.dumps(backend_error_body(error)).encode() + b"\n\n"
    finally:
        # Closing the generator stops the model call (a client that went away, too).
        await chunks.aclose()
    yield DONE

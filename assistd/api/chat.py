"""/v1/chat/completions."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from openai.types.chat import ChatCompletion

from assistd import wirejson
from assistd.api.deps import Chat
from assistd.api.disconnect import (
    CLIENT_CLOSED_REQUEST,
    ClientDisconnected,
    until_disconnected,
)
from assistd.api.errors import backend_error_body
from assistd.api.responses import json_response
from assistd.api.streaming import STREAM_END, EventStream
from assistd.backends.base import BackendError
from assistd.protocol.chat import ChatCompletionCreate

router = APIRouter(tags=["chat"])
logger = logging.getLogger("assistd.api")

DONE = STREAM_END


def _data(chunk: dict[str, Any]) -> bytes:
    return b"data: " + wirejson.dumps(chunk) + b"\n\n"


@router.post("/chat/completions", response_model=ChatCompletion)
async def create_chat_completion(request: Request, body: ChatCompletionCreate, service: Chat) -> Response:
    chat = service.prepare(body)
    try:
        if not body.stream:
            return json_response(await until_disconnected(request, service.complete(chat)))

        chunks = service.chunks(chat)
        # The first chunk comes once the model has taken the request (services/chat.py), and the
        # response starts with it: a model that cannot answer at all (upstream down, rate limited)
        # gets its HTTP status, not a 200, and an upstream that has answered its 200 has assistd's
        # status line and headers on their way while it works on its first token.
        try:
            first = await until_disconnected(request, anext(chunks))
        except BaseException:
            await chunks.aclose()
            raise
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return EventStream(
        _relay(first, chunks, chat.choices - 1),
        on_close=chunks.aclose,  # the model call, should the relay never start
    )


# Each piece the relay yields is one write to the client's socket: a system call, and one more time the
# client wakes up to read, both on the path of every token (and for the client, on the same cores). So
# what is ready together goes out together: the role chunk with the model's first chunk, and the last
# finish chunk with the usage chunk, [DONE] and the end of the body.


async def _relay(
    first: dict[str, Any], chunks: AsyncGenerator[dict[str, Any], None], last_choice: int
) -> AsyncGenerator[bytes, None]:
    pending = [_data(first)]  # the role chunk, which no client needs before the text that follows it
    try:
        async for chunk in chunks:
            pending.append(_data(chunk))
            if _finishes(chunk, last_choice):
                break
            yield b"".join(pending)
            pending = []
        # After the last choice's finish only the usage chunk can follow, and nothing in it waits on
        # the model (the backend's stream has ended): it is not worth a write of its own.
        pending += [_data(chunk) async for chunk in chunks]
    except BackendError as error:
        # Mid-stream: the status line is long gone; OpenAI sends the error as a data line.
        pending.append(b"data: " + wirejson.dumps(backend_error_body(error)) + b"\n\n")
    finally:
        # Closing the generator stops the model call (a client that went away, too).
        await chunks.aclose()
    pending.append(DONE)
    yield b"".join(pending)


def _finishes(chunk: dict[str, Any], last_choice: int) -> bool:
    """Whether ``chunk`` is the finish chunk of the answer's last choice."""
    choices = chunk["choices"]
    return bool(choices) and choices[0]["finish_reason"] is not None and choices[0]["index"] == last_choice

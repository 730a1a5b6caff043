"""A fake OpenAI-compatible upstream for the upstream-backend tests and ``bench/backends.py``.

Run it as a server of its own, from the repository root::

    python -m uvicorn tests.fake_upstream:app --port N

``POST /v1/chat/completions`` streams Server-Sent Events the way OpenAI does (a role chunk, content
or tool call chunks, a finish chunk, the usage chunk when ``stream_options.include_usage`` asks for
it, ``data: [DONE]``), or answers one ``chat.completion`` for ``"stream": false``. What it does is
chosen by the request's ``model``:

* ``echo``: "Echo: <last user message>" in a few chunks.
* ``logprobs``: as ``echo``, each piece with its ``logprobs`` entry (token N has logprob -N/10, and
  always three ``top_logprobs``: itself, "?" at -5.0 and "<|eot|>" at -9.0 with bytes null,
  whatever ``top_logprobs`` asks); streamed, the first piece's entry comes one chunk early, in a
  chunk with empty content.
* ``chunks-N`` / ``chunks-N-Dms``: N content chunks (" w0", " w1", ...), D ms apart (default: no
  delay), for the benchmark.
* ``flaky-429``: the first request for a given last user message gets 429 with ``retry-after: 1``,
  later ones are answered as ``echo``.
* ``always-429``: 429 with ``retry-after: 0``, every time.
* ``always-500``: 500, every time; the message echoes the Authorization header it got, as careless
  servers do, so that tests can check that assistd scrubs it.
* ``status-NNN``: that status, with the same echoing message (and for 3xx a ``location`` header
  naming ``/v1/chat/completions`` again).
* ``leak-edge``: 500 whose message puts the API key (the Authorization header without "Bearer ")
  right across the 1000th character.
* ``hang``: never answers (not even the status line) until the client goes away.
* ``late-S``: no status line for S seconds (or until the client goes away), then answers as ``echo``.
* ``hang-mid``: one content chunk, then nothing until the client goes away.
* ``error-mid``: one content chunk, then an ``{"error": ...}`` data line, and the stream ends.
* ``error-first``: status 200 and the role chunk, then the ``{"error": ...}`` data line, no content.
* ``gated``: status 200 and the role chunk at once; the rest of ``echo``'s answer waits until
  ``POST /release`` (or the client leaves).
* ``slow`` / ``slow-S``: one chunk every 0.2 s for 30 s / for S seconds.
* ``tools``: a call of the request's first tool, arguments ``{"query": <last user message>}`` sent
  in three fragments, finish reason ``tool_calls``.
* ``unusual-sse``: the text ``UNUSUAL_TEXT`` in server-sent events that are valid but unusual: CRLF
  line ends, a comment and ``event:``/``id:`` fields, one event's JSON over two ``data:`` lines, and
  JSON written without ASCII escapes, so that U+2028, U+2029 and U+0085 (line breaks to Unicode,
  not to SSE) appear raw inside strings.

``GET /stats`` answers the counters since the last ``POST /reset``: ``requests`` per model,
``disconnects`` per model (streams or waits that the client left before their end), ``completed``
per model (answers sent to their end), ``authorization`` (every Authorization header seen, in order),
``proxied`` (the Host and Proxy-Authorization headers of each request sent to it as to a proxy)
and ``last_body`` per model. ``GET /health`` answers 200 once the server is up. ``POST /release``
opens the gate of every ``gated`` answer, those waiting and the next ones, until ``POST /reset``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HANG_LIMIT_S = 120.0  # a hanging answer gives up by itself after this, client or not
SLOW_INTERVAL_S = 0.2
SLOW_DURATION_S = 30.0
LEAK_OFFSET = 1000 - 16  # leak-edge: where the key starts; 16 of its characters fall before 1000
_CHUNKS = re.compile(r"^chunks-(\d+)(?:-(\d+)ms)?$")
_STATUS = re.compile(r"^status-(\d{3})$")
_SLOW = re.compile(r"^slow(?:-(\d+))?$")
_LATE = re.compile(r"^late-(\d+)$")


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    disconnects: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    authorization: list[str] = field(default_factory=list)
    proxied: list[list[str]] = field(default_factory=list)
    last_body: dict[str, Any] = field(default_factory=dict)
    flaky_seen: set[str] = field(default_factory=set)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "disconnects": dict(self.disconnects),
            "completed": dict(self.completed),
            "authorization": self.authorization,
            "proxied": self.proxied,
            "last_body": self.last_body,
        }


stats = Stats()


def _last_user_message(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _error(status: int, message: str, type_: str = "server_error", **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class Answer:
    """The chunks of one answer, framed as OpenAI frames them."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.model = str(body.get("model"))
        self.created = int(time.time())
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.prompt_tokens = sum(len(str(m.get("content") or "").split()) + 3 for m in body["messages"])

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }

    def usage(self, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def ending(self, reason: str, completion_tokens: int) -> list[bytes]:
        parts = [_sse(self.chunk({}, reason))]
        if self.include_usage:
            parts.append(_sse({**self.chunk({}), "choices": [], "usage": self.usage(completion_tokens)}))
        return [*parts, _sse("[DONE]")]

    def completion(
        self,
        message: dict[str, Any],
        reason: str,
        completion_tokens: int,
        logprobs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": reason}],
            "usage": self.usage(completion_tokens),
        }


def _streaming(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})


async def _watched(model: str, parts: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``parts``, counting a client that left before the end as a disconnect of ``model``. Starlette
    cancels the body when the client goes away (ASGI spec 2.3, as uvicorn serves it)."""
    finished = False
    try:
        async for part in parts:
            yield part
        finished = True
    finally:
        if finished:
            stats.completed[model] += 1
        else:
            stats.disconnects[model] += 1


def _text_answer(
    body: dict[str, Any], pieces: list[str], delay: float = 0.0, gate: asyncio.Event | None = None
) -> Response:
    answer = Answer(body)
    if not body.get("stream"):
        stats.completed[answer.model] += 1
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None}
        return JSONResponse(answer.completion(message, "stop", len(pieces)))

    async def parts() -> AsyncIterator[bytes]:
        yield _sse(answer.chunk({"role": "assistant", "content": "", "refusal": None}))
        if gate is not None:
            await gate.wait()
        for piece in pieces:
            if delay:
                await asyncio.sleep(delay)
            yield _sse(answer.chunk({"content": piece}))
        for part in answer.ending("stop", len(pieces)):
            yield part

    return _streaming(_watched(answer.model, parts()))


def token_logprob(token: str, position: int) -> dict[str, Any]:
    """The ``logprobs.content`` entry of the ``logprobs`` model's token at ``position``."""
    chosen = {"token": token, "logprob": -(position + 1) / 10, "bytes": list(token.encode())}
    alternatives = [
        {"token": "?", "logprob": -5.0, "bytes": [63]},
        {"token": "<|eot|>", "logprob": -9.0, "bytes": None},
    ]
    return {**chosen, "top_logprobs": [chosen, *alternatives]}


def _logprobs_answer(body: dict[str, Any]) -> Response:
    answer = Answer(body)
    pieces = _echo_pieces(_last_user_message(body))
    entries = [token_logprob(piece, position) for position, piece in enumerate(pieces)]
    if not body.get("stream"):
        stats.completed[answer.model] += 1
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None}
        logprobs = {"content": entries, "refusal": None}
        return JSONResponse(answer.completion(message, "stop", len(pieces), logprobs))

    def of(*tokens: dict[str, Any]) -> dict[str, Any]:
        return {"content": list(tokens), "refusal": None}

    async def parts() -> AsyncIterator[bytes]:
        yield _sse(answer.chunk({"role": "assistant", "content": "", "refusal": None}, logprobs=of()))
        yield _sse(answer.chunk({"content": ""}, logprobs=of(entries[0])))
        yield _sse(answer.chunk({"content": pieces[0]}, logprobs=of()))
        for piece, entry in zip(pieces[1:], entries[1:], strict=True):
            yield _sse(answer.chunk({"content": piece}, logprobs=of(entry)))
        for part in answer.ending("stop", len(pieces)):
            yield part

    return _streaming(_watched(answer.model, parts()))


def _echo_pieces(text: str) -> list[str]:
    words = f"Echo: {text}".split(" ")
    return [word if index == 0 else f" {word}" for index, word in enumerate(words)]


def _tool_answer(body: dict[str, Any]) -> Response:
    tools = body.get("tools") or []
    if not tools:
        return _error(400, "the 'tools' model needs at least one tool", "invalid_request_error")
    answer = Answer(body)
    name = tools[0]["function"]["name"]
    arguments = json.dumps({"query": _last_user_message(body)})
    third = max(len(arguments) // 3, 1)
    fragments = [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
    call_id = "call_fake_0001"
    if not body.get("stream"):
        stats.completed[answer.model] += 1
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return JSONResponse(answer.completion(message, "tool_calls", len(fragments)))

    async def parts() -> AsyncIterator[bytes]:
        yield _sse(answer.chunk({"role": "assistant", "content": None}))
        first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        yield _sse(answer.chunk({"tool_calls": [first]}))
        for fragment in fragments:
            yield _sse(answer.chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
        for part in answer.ending("tool_calls", len(fragments)):
            yield part

    return _streaming(_watched(answer.model, parts()))


async def _hang(request: Request, model: str, seconds: float = HANG_LIMIT_S) -> bool:
    """No status line at all, until the client leaves (True) or ``seconds`` passed (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            stats.disconnects[model] += 1
            return True
        await asyncio.sleep(0.05)
    return False


def _one_chunk_then(body: dict[str, Any], then: str, *, content: bool = True) -> Response:
    answer = Answer(body)

    async def parts() -> AsyncIterator[bytes]:
        yield _sse(answer.chunk({"role": "assistant", "content": ""}))
        if content:
            yield _sse(answer.chunk({"content": "Partial"}))
        if then == "error":
            yield _sse({"error": {"message": "the fake upstream broke down", "type": "server_error"}})
            return
        await asyncio.sleep(HANG_LIMIT_S)

    return _streaming(_watched(answer.model, parts()))


UNUSUAL_PIECES = ["Line\u2028", " paragraph\u2029", " next\u0085line", " done"]
UNUSUAL_TEXT = "".join(UNUSUAL_PIECES)


def _unusual_sse(body: dict[str, Any]) -> Response:
    answer = Answer(body)

    def event(payload: dict[str, Any], split: bool = False) -> bytes:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        if split:  # two data lines, which the SSE spec joins with a newline: still the same JSON
            cut = data.index(",")
            return f"data: {data[:cut]}\r\ndata: {data[cut:]}\r\n\r\n".encode()
        return f"event: message\r\nid: 1\r\ndata: {data}\r\n\r\n".encode()

    async def parts() -> AsyncIterator[bytes]:
        yield b": keep-alive\r\n\r\n"
        yield event(answer.chunk({"role": "assistant", "content": ""}))
        for index, piece in enumerate(UNUSUAL_PIECES):
            yield event(answer.chunk({"content": piece}), split=index == 1)
        yield event(answer.chunk({}, "stop"))
        if answer.include_usage:
            yield event({**answer.chunk({}), "choices": [], "usage": answer.usage(len(UNUSUAL_PIECES))})
        yield b"data: [DONE]\r\n\r\n"

    return _streaming(_watched(answer.model, parts()))


def _slow(body: dict[str, Any], seconds: float) -> Response:
    count = int(seconds / SLOW_INTERVAL_S)
    return _text_answer(body, [f" s{index}" for index in range(count)], SLOW_INTERVAL_S)


async def chat_completions(request: Request) -> Response:
    body = await request.json()
    model = str(body.get("model"))
    authorization = request.headers.get("authorization", "")
    stats.requests[model] += 1
    stats.authorization.append(authorization)
    if request.headers.get("proxy-authorization") is not None:
        stats.proxied.append([request.headers["host"], request.headers["proxy-authorization"]])
    stats.last_body[model] = body
    echoed = f"the fake upstream failed (you sent Authorization: {authorization or 'nothing'})"

    if model == "echo":
        return _text_answer(body, _echo_pieces(_last_user_message(body)))
    if model == "logprobs":
        return _logprobs_answer(body)
    if match := _CHUNKS.match(model):
        count, delay_ms = int(match.group(1)), int(match.group(2) or 0)
        return _text_answer(body, [f" w{index}" for index in range(count)], delay_ms / 1000)
    if model == "flaky-429":
        key = _last_user_message(body)
        if key not in stats.flaky_seen:
            stats.flaky_seen.add(key)
            return _error(429, "slow down, flaky", "rate_limit_error", **{"retry-after": "1"})
        return _text_answer(body, _echo_pieces(key))
    if model == "always-429":
        return _error(429, "slow down, always", "rate_limit_error", **{"retry-after": "0"})
    if model == "always-500":
        return _error(500, echoed)
    if match := _STATUS.match(model):
        status = int(match.group(1))
        # A redirect goes to the same path: followed, the POST would come back as a GET (405).
        moved = {"location": "/v1/chat/completions"} if 300 <= status < 400 else {}
        return _error(status, echoed, "invalid_request_error", **moved)
    if model == "leak-edge":
        key = authorization.removeprefix("Bearer ")
        return _error(500, "x" * LEAK_OFFSET + key + " was the key you sent")
    if model == "hang":
        await _hang(request, model)
        return _error(503, "the fake upstream hung")
    if match := _LATE.match(model):
        if await _hang(request, model, float(match.group(1))):
            return _error(503, "the client left")
        return _text_answer(body, _echo_pieces(_last_user_message(body)))
    if model == "hang-mid":
        return _one_chunk_then(body, "hang")
    if model == "error-mid":
        return _one_chunk_then(body, "error")
    if model == "error-first":
        return _one_chunk_then(body, "error", content=False)
    if model == "gated":
        return _text_answer(body, _echo_pieces(_last_user_message(body)), gate=stats.gate)
    if match := _SLOW.match(model):
        return _slow(body, float(match.group(1) or SLOW_DURATION_S))
    if model == "tools":
        return _tool_answer(body)
    if model == "unusual-sse":
        return _unusual_sse(body)
    return _error(404, f"The model '{model}' does not exist (fake upstream)", "invalid_request_error")


async def get_stats(_request: Request) -> Response:
    return JSONResponse(stats.as_json())


async def reset(_request: Request) -> Response:
    stats.clear()
    return JSONResponse({"ok": True})


async def release(_request: Request) -> Response:
    stats.gate.set()
    return JSONResponse({"ok": True})


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/stats", get_stats, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/release", release, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)

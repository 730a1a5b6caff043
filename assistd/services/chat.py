"""Chat Completions: a request checked against the model's limits, sent to its backend, and the answer
in OpenAI's shapes, whole or as ``chat.completion.chunk`` dicts.

Chunks are plain dicts on purpose: they are the hot path of a streamed relay, and each is serialised
once, straight to JSON. The whole answer is the SDK's own ``ChatCompletion``.

Logprobs
    Asked for, a choice's ``logprobs`` is ``{"content": [...], "refusal": null}``, one entry per token
    of the text (tool calls have none, as at OpenAI). Streamed, every chunk of a choice carries the
    entries of its own delta (``[]`` for the role chunk and tool call fragments) but the finish chunk,
    whose ``logprobs`` is null, as OpenAI sends them. When the backend gave no entries for text it
    did say (an upstream that ignores the parameter), ``logprobs`` is null rather than an empty list,
    which would claim the text had no tokens.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from openai.types.chat import ChatCompletion

from assistd.backends.base import ChatRequest, Finish, TextDelta, TokenLogprob, ToolCallDelta, Usage
from assistd.backends.routing import ModelNotFound, ModelRouter, Target
from assistd.errors import InvalidRequest, ModelNotFoundError
from assistd.ids import Prefix, new_id, now
from assistd.protocol.chat import ChatCompletionCreate


@dataclass(frozen=True, slots=True)
class PreparedChat:
    """A request that passed every check, ready for its backend."""

    id: str
    created: int
    model: str  # the name the client asked for, which every answer reports
    target: Target
    request: ChatRequest
    choices: int
    include_usage: bool
    # Asked with the pre-tools ``functions``: calls are answered as ``function_call``.
    legacy_functions: bool = False


@dataclass
class _Choice:
    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)


class ChatService:
    def __init__(self, models: ModelRouter) -> None:
        self.models = models

    def prepare(self, body: ChatCompletionCreate) -> PreparedChat:
        unsupported = body.unsupported_field()
        if unsupported is not None:
            raise InvalidRequest(
                f"The '{unsupported}' parameter is not supported by this server.", param=unsupported
            )
        try:
            target = self.models.resolve(body.model)
        except ModelNotFound:
            raise ModelNotFoundError(body.model) from None

        messages = _chat_messages([message.model_dump(exclude_none=True) for message in body.messages])
        max_tokens = body.max_completion_tokens or body.max_tokens
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        limit = target.limits.max_output_tokens
        if limit is not None and max_tokens is not None and max_tokens > limit:
            raise InvalidRequest(
                f"{param} is too large: {max_tokens}. This model supports at most {limit} completion "
                f"tokens, whereas you provided {max_tokens}.",
                param=param,
            )
        window = target.limits.context_window
        if window is not None:
            prompt = target.backend.count_tokens(messages)
            if prompt + (max_tokens or 0) > window:
                raise InvalidRequest(
                    f"This model's maximum context length is {window} tokens. However, you requested "
                    f"{prompt + (max_tokens or 0)} tokens ({prompt} in the messages, {max_tokens or 0} "
                    "in the completion). Please reduce the length of the messages or completion.",
                    param="messages",
                    code="context_length_exceeded",
                )

        if max_tokens is None:
            max_tokens = limit  # the model's own cap; not reserved in the window check above
        tool_choice: str | dict[str, Any] = "auto"
        if body.functions is not None:
            legacy = body.function_call
            if isinstance(legacy, str):
                tool_choice = legacy
            elif legacy is not None:
                tool_choice = {"type": "function", "function": {"name": legacy.name}}
        elif isinstance(body.tool_choice, str):
            tool_choice = body.tool_choice
        elif body.tool_choice is not None:
            tool_choice = body.tool_choice.model_dump()
        tools = [tool.model_dump(exclude_none=True) for tool in body.tools or []]
        tools += [
            {"type": "function", "function": function.model_dump(exclude_none=True)}
            for function in body.functions or []
        ]
        request = ChatRequest(
            model=target.model,
            messages=messages,
            tools=tools,
            tool_choice=tool_choice,
            # The pre-tools API knows one call per answer.
            parallel_tool_calls=body.parallel_tool_calls is not False and body.functions is None,
            response_format=(
                body.response_format.model_dump(by_alias=True, exclude_none=True)
                if body.response_format is not None and body.response_format.type != "text"
                else None
            ),
            temperature=body.temperature,
            top_p=body.top_p,
            max_tokens=max_tokens,
            stop=body.stop_sequences,
            seed=body.seed,
            presence_penalty=body.presence_penalty,
            frequency_penalty=body.frequency_penalty,
            logprobs=bool(body.logprobs),
            top_logprobs=body.top_logprobs,
        )
        return PreparedChat(
            id=new_id(Prefix.CHAT_COMPLETION),
            created=now(),
            model=body.model,
            target=target,
            request=request,
            choices=body.n or 1,
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            legacy_functions=body.functions is not None,
        )

    async def complete(self, chat: PreparedChat) -> ChatCompletion:
        """The whole answer: every choice, one after the other."""
        choices: list[dict[str, Any]] = []
        usage = Usage(0, 0)
        for index in range(chat.choices):
            choice = _Choice()
            finish: Finish | None = None
            async for chunk in chat.target.stream(chat.request):
                if isinstance(chunk, TextDelta):
                    choice.text += chunk.text
                    choice.tokens += chunk.logprobs
                elif isinstance(chunk, ToolCallDelta):
                    _add_call_fragment(choice, chunk)
                elif isinstance(chunk, Finish):
                    finish = chunk
            assert finish is not None  # the backend contract: a stream ends with exactly one Finish
            usage = _add(usage, finish.usage, first=index == 0)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": choice.text if choice.text or not choice.calls else None,
                "refusal": None,
                "annotations": [],
            }
            reason: str = finish.reason
            if choice.calls and chat.legacy_functions:
                message["function_call"] = choice.calls[min(choice.calls)]["function"]
                reason = "function_call" if reason == "tool_calls" else reason
            elif choice.calls:
                message["tool_calls"] = [choice.calls[i] for i in sorted(choice.calls)]
            logprobs = _logprobs(choice.text, choice.tokens) if chat.request.logprobs else None
            choices.append(
                {"index": index, "message": message, "logprobs": logprobs, "finish_reason": reason}
            )
        return ChatCompletion.model_validate(
            {
                "id": chat.id,
                "object": "chat.completion",
                "created": chat.created,
                "model": chat.model,
                "choices": choices,
                "usage": usage.wire(),
                "service_tier": "default",
            }
        )

    async def chunks(self, chat: PreparedChat) -> AsyncGenerator[dict[str, Any], None]:
        """The answer as stream chunks: per choice a role chunk, deltas and a finish chunk; then, if
        asked for, the usage chunk. Backend errors propagate to the caller.

        A choice's role chunk comes once its model has taken the request (``Accepted``) or has said
        something, so the first chunk tells the relay (api/chat.py) that its response can start: a
        model that refuses the request before that gets its own HTTP status, not a 200. The last
        choice's finish chunk comes when its backend stream has ended: what follows it waits on no
        model, and the relay sends it all in one write."""
        usage = Usage(0, 0)
        usage_field = {"usage": None} if chat.include_usage else {}
        for index in range(chat.choices):
            role: dict[str, Any] | None = self._chunk(
                chat, index, {"role": "assistant", "content": "", "refusal": None}, usage_field
            )
            async for piece in chat.target.stream(chat.request):
                if role is not None:
                    yield role
                    role = None
                if isinstance(piece, TextDelta):
                    text = {"content": piece.text}
                    yield self._chunk(chat, index, text, usage_field, tokens=piece.logprobs)
                elif isinstance(piece, ToolCallDelta) and chat.legacy_functions:
                    if piece.index == 0:
                        yield self._chunk(chat, index, {"function_call": _function_delta(piece)}, usage_field)
                elif isinstance(piece, ToolCallDelta):
                    yield self._chunk(chat, index, {"tool_calls": [_call_delta(piece)]}, usage_field)
                elif isinstance(piece, Finish):
                    usage = _add(usage, piece.usage, first=index == 0)
                    reason: str = piece.reason
                    if chat.legacy_functions and reason == "tool_calls":
                        reason = "function_call"
                    yield self._chunk(chat, index, {}, usage_field, finish_reason=reason)
        if chat.include_usage:
            yield {**self._frame(chat), "choices": [], "usage": usage.wire()}

    def _frame(self, chat: PreparedChat) -> dict[str, Any]:
        return {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model,
            "service_tier": "default",
        }

    def _chunk(
        self,
        chat: PreparedChat,
        index: int,
        delta: dict[str, Any],
        usage_field: dict[str, None],
        *,
        finish_reason: str | None = None,
        tokens: Sequence[TokenLogprob] = (),
    ) -> dict[str, Any]:
        logprobs = None
        if chat.request.logprobs and finish_reason is None:
            logprobs = _logprobs(delta.get("content"), tokens)
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return {**self._frame(chat), "choices": [choice], **usage_field}


def _logprobs(text: str | None, tokens: Sequence[TokenLogprob]) -> dict[str, Any] | None:
    """A choice's (or a delta's) ``logprobs``, when asked for: null for text without any token
    entries (see "Logprobs" above)."""
    if text and not tokens:
        return None
    return {"content": [token.wire() for token in tokens], "refusal": None}


def _chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as every backend takes them: "developer" as "system" (many OpenAI-compatible
    servers know only the latter), and the pre-tools function call and result as a tool call and a
    tool message, paired by an id made up here."""
    ids: dict[str, str] = {}  # function name -> the id of its latest call
    for position, message in enumerate(messages):
        role = message["role"]
        if role == "developer":
            message["role"] = "system"
        elif role == "assistant" and "function_call" in message:
            call = message.pop("function_call")
            ids[call["name"]] = call_id = f"call_function_{position}"
            message["tool_calls"] = [
                *message.get("tool_calls", []),
                {"id": call_id, "type": "function", "function": call},
            ]
        elif role == "function":
            name = message.pop("name")
            message.update(role="tool", tool_call_id=ids.get(name, f"call_function_{name}"))
            message.setdefault("content", "")
    return messages


def _function_delta(delta: ToolCallDelta) -> dict[str, str]:
    if delta.id is not None:
        return {"name": delta.name or "", "arguments": delta.arguments}
    return {"arguments": delta.arguments}


def _call_delta(delta: ToolCallDelta) -> dict[str, Any]:
    if delta.id is not None:
        return {
            "index": delta.index,
            "id": delta.id,
            "type": "function",
            "function": {"name": delta.name or "", "arguments": delta.arguments},
        }
    return {"index": delta.index, "function": {"arguments": delta.arguments}}


def _add_call_fragment(choice: _Choice, delta: ToolCallDelta) -> None:
    call = choice.calls.get(delta.index)
    if call is None:
        call = choice.calls[delta.index] = {
            "id": delta.id or new_id(Prefix.TOOL_CALL),
            "type": "function",
            "function": {"name": delta.name or "", "arguments": ""},
        }
    call["function"]["arguments"] += delta.arguments


def _add(total: Usage, more: Usage, *, first: bool) -> Usage:
    # With n > 1 the prompt is read once; every choice adds its own completion.
    return Usage(
        total.prompt_tokens + (more.prompt_tokens if first else 0),
        total.completion_tokens + more.completion_tokens,
    )

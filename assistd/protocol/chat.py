"""The Chat Completions request body (``POST /v1/chat/completions``).

Every field of the reference is accepted, the pre-tools ``functions``/``function_call`` too. Those
that only shape OpenAI's own service (``store``, ``service_tier``, ``prompt_cache_key``, ``user``,
``metadata``, ...) are accepted and have no effect; those that ask for something no backend here can
give (audio, predicted outputs, web search, logit bias) are refused with a 400 naming them, rather
than silently ignored. ``logprobs`` and ``top_logprobs`` are served by every backend (see
``services/chat.py``); as at OpenAI, ``top_logprobs`` without ``logprobs: true`` is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from assistd.protocol.common import (
    FunctionDefinition,
    FunctionName,
    FunctionTool,
    Metadata,
    RequestBody,
    RequestModel,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponseFormatText,
    Temperature,
    TopP,
)


def _invalid(param: str, message: str) -> PydanticCustomError:
    # The HTTP layer turns ctx["param"] into the error's param.
    return PydanticCustomError("invalid", message, {"param": param})


class PromptCacheBreakpoint(RequestModel):
    mode: Literal["explicit"]


# Marks where OpenAI's prompt cache may end: accepted, and not passed on (no backend here knows it).
CacheBreakpoint = Annotated[PromptCacheBreakpoint | None, Field(default=None, exclude=True)]


class TextPart(RequestModel):
    type: Literal["text"]
    text: str
    prompt_cache_breakpoint: CacheBreakpoint


class ImageURL(RequestModel):
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class ImagePart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageURL
    prompt_cache_breakpoint: CacheBreakpoint


class RefusalPart(RequestModel):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class SystemMessage(RequestModel):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(RequestModel):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(RequestModel):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class CalledFunction(RequestModel):
    name: str
    arguments: str


class MessageToolCall(RequestModel):
    id: str
    type: Literal["function"]
    function: CalledFunction


class AssistantMessage(RequestModel):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = None
    function_call: CalledFunction | None = None  # the pre-tools API


class FunctionMessage(RequestModel):
    """The pre-tools API's answer to a ``function_call``."""

    role: Literal["function"]
    name: str
    content: str | None = None


class ToolMessage(RequestModel):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


ChatMessage = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class StreamOptions(RequestModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ToolChoiceFunction(RequestModel):
    name: FunctionName


class NamedToolChoice(RequestModel):
    type: Literal["function"]
    function: ToolChoiceFunction


ChatResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema, Field(discriminator="type")
]
Penalty = Annotated[float | None, Field(ge=-2, le=2)]

# Fields whose use this server cannot honour: given a non-empty value, the request is refused.
UNSUPPORTED = ("audio", "prediction", "web_search_options", "logit_bias")


class FunctionCallName(RequestModel):
    name: FunctionName


class ChatCompletionCreate(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    # The pre-tools API, still sent by code of 2023: served as tools, answered in its own shape.
    functions: list[FunctionDefinition] | None = Field(default=None, max_length=128)
    function_call: Literal["none", "auto"] | FunctionCallName | None = None
    parallel_tool_calls: bool | None = None
    response_format: ChatResponseFormat | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: Temperature = None
    top_p: TopP = None
    seed: int | None = None
    presence_penalty: Penalty = None
    frequency_penalty: Penalty = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # Accepted, no effect here (see the module docstring).
    user: str | None = None
    metadata: Metadata = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    safety_identifier: str | None = None
    moderation: Any = None
    # Refused when used (UNSUPPORTED).
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    logit_bias: dict[str, int] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionCreate:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise _invalid("stop", "at most 4 stop sequences are allowed")
        if self.top_logprobs is not None and not self.logprobs:
            raise _invalid("top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true")
        if self.stream_options is not None and not self.stream:
            raise _invalid("stream_options", "'stream_options' is only allowed when 'stream' is enabled")
        if self.functions is not None and self.tools is not None:
            raise _invalid("functions", "'functions' and 'tools' cannot be used together; use 'tools'")
        if self.function_call not in (None, "none") and not self.functions:
            raise _invalid("function_call", "'function_call' is only allowed when 'functions' are specified")
        if isinstance(self.function_call, FunctionCallName):
            named = self.function_call.name
            if named not in {function.name for function in self.functions or []}:
                raise _invalid("function_call", f"function '{named}' is not one of the 'functions'")
        if self.tool_choice not in (None, "none") and not self.tools:
            raise _invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")
        if isinstance(self.tool_choice, NamedToolChoice):
            named = self.tool_choice.function.name
            if named not in {tool.function.name for tool in self.tools or []}:
                raise _invalid("tool_choice", f"function '{named}' is not one of the 'tools'")
        return self

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def unsupported_field(self) -> str | None:
        """The first field set that this server cannot honour, if any."""
        for name in UNSUPPORTED:
            if getattr(self, name):
                return name
        if self.modalities and "audio" in self.modalities:
            return "modalities"
        return None

"""Request bodies of runs: create, create-and-run, modify, submit tool outputs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from assistd.protocol.common import (
    AssistantTools,
    FunctionName,
    Metadata,
    ReasoningEffort,
    RequestBody,
    RequestModel,
    ResponseFormat,
    Temperature,
    ToolResourcesCreate,
    TopP,
)
from assistd.protocol.messages import MAX_MESSAGES_PER_REQUEST, MessageCreate
from assistd.protocol.threads import ThreadCreate

RUN_MAX_TOOLS = 20
# Stored in 32-bit integer columns: a larger number is refused (400 naming it), not a database error.
INT32_MAX = 2**31 - 1
TokenBudget = Annotated[int | None, Field(ge=256, le=INT32_MAX)]


class TruncationStrategy(RequestModel):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1, le=INT32_MAX)


class NamedFunction(RequestModel):
    name: FunctionName


class ToolChoiceFunction(RequestModel):
    type: Literal["function"]
    function: NamedFunction


class ToolChoiceBuiltin(RequestModel):
    type: Literal["code_interpreter", "file_search"]


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[ToolChoiceFunction | ToolChoiceBuiltin, Field(discriminator="type")]
)


class RunOptions(RequestBody):
    """What a run may override or set, shared by create and create-and-run."""

    assistant_id: str = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: AssistantTools | None = Field(default=None, max_length=RUN_MAX_TOOLS)
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    stream: bool | None = None
    max_prompt_tokens: TokenBudget = None
    max_completion_tokens: TokenBudget = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class RunCreate(RunOptions):
    reasoning_effort: ReasoningEffort | None = None
    additional_instructions: str | None = Field(default=None, max_length=256_000)
    additional_messages: list[MessageCreate] | None = Field(default=None, max_length=MAX_MESSAGES_PER_REQUEST)


class ThreadAndRunCreate(RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResourcesCreate | None = None


class RunModify(RequestBody):
    metadata: Metadata = None


class ToolOutput(RequestModel):
    tool_call_id: str = Field(min_length=1)
    output: str = ""


class SubmitToolOutputs(RequestBody):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None

"""Request bodies of /v1/assistants."""

from __future__ import annotations

from pydantic import Field

from assistd.protocol.common import (
    ASSISTANT_MAX_TOOLS,
    AssistantTools,
    Metadata,
    ReasoningEffort,
    RequestBody,
    ResponseFormat,
    Temperature,
    ToolResources,
    ToolResourcesCreate,
    TopP,
)


class AssistantCreate(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    reasoning_effort: ReasoningEffort | None = None
    tools: AssistantTools = Field(default_factory=list, max_length=ASSISTANT_MAX_TOOLS)
    tool_resources: ToolResourcesCreate | None = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: ResponseFormat | None = None


class AssistantModify(RequestBody):
    """Every field optional; only the fields sent are changed (``model_fields_set``)."""

    model: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    reasoning_effort: ReasoningEffort | None = None
    tools: AssistantTools | None = Field(default=None, max_length=ASSISTANT_MAX_TOOLS)
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: ResponseFormat | None = None

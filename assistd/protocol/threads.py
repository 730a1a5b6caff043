"""Request bodies of /v1/threads."""

from __future__ import annotations

from pydantic import Field

from assistd.protocol.common import Metadata, RequestBody, ToolResources, ToolResourcesCreate
from assistd.protocol.messages import MAX_MESSAGES_PER_REQUEST, MessageCreate


class ThreadCreate(RequestBody):
    messages: list[MessageCreate] = Field(default_factory=list, max_length=MAX_MESSAGES_PER_REQUEST)
    tool_resources: ToolResourcesCreate | None = None
    metadata: Metadata = None


class ThreadModify(RequestBody):
    tool_resources: ToolResources | None = None
    metadata: Metadata = None

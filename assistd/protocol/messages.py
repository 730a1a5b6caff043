"""Request bodies of /v1/threads/{thread_id}/messages (also used inside thread creation)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from assistd.protocol.common import (
    CodeInterpreterTool,
    FileSearchTypeOnly,
    Metadata,
    RequestBody,
    RequestModel,
)

ImageDetail = Literal["auto", "low", "high"]


# Messages one request may create (a thread's first ones, a run's additional ones): a bound on the work
# and the transaction of one request. OpenAI documents none; conversations that long are built up.
MAX_MESSAGES_PER_REQUEST = 1000


class TextPart(RequestModel):
    type: Literal["text"]
    text: str


class ImageFileRef(RequestModel):
    file_id: str = Field(min_length=1)
    detail: ImageDetail = "auto"


class ImageFilePart(RequestModel):
    type: Literal["image_file"]
    image_file: ImageFileRef


class ImageUrlRef(RequestModel):
    url: str = Field(min_length=1)
    detail: ImageDetail = "auto"


class ImageUrlPart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageUrlRef


ContentPart = Annotated[TextPart | ImageFilePart | ImageUrlPart, Field(discriminator="type")]

AttachmentTool = Annotated[CodeInterpreterTool | FileSearchTypeOnly, Field(discriminator="type")]


class Attachment(RequestModel):
    file_id: str = Field(min_length=1)
    tools: list[AttachmentTool] = Field(default_factory=list)


class MessageCreate(RequestBody):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)]
    attachments: list[Attachment] | None = None
    metadata: Metadata = None


class MessageModify(RequestBody):
    metadata: Metadata = None

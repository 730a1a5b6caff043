"""The fields of a file upload (``POST /v1/files``, multipart/form-data), beside the file itself."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assistd.protocol.common import RequestModel

UploadPurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]


class ExpiresAfter(RequestModel):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2592000)


class FileCreate(RequestModel):
    purpose: UploadPurpose
    expires_after: ExpiresAfter | None = None

"""The request body of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from assistd.protocol.common import RequestBody

MAX_INPUTS = 2048
NonEmptyText = Annotated[str, Field(min_length=1)]


class EmbeddingCreate(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    # Token-id inputs (lists of integers) are refused: they are ids of OpenAI's own tokenizers.
    input: NonEmptyText | Annotated[list[NonEmptyText], Field(min_length=1, max_length=MAX_INPUTS)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

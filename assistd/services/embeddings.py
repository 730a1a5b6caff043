"""Embeddings in OpenAI's shape: float lists, or base64 of little-endian float32, as the SDK asks.

The answer is a plain dict: with base64 an embedding is a string, which the SDK's response type (a
list of floats) does not describe; the SDK decodes it itself.
"""

from __future__ import annotations

import base64
from typing import Any

from assistd.backends.embeddings import EmbeddingBackend, pack_float32
from assistd.errors import InvalidRequest
from assistd.protocol.embeddings import EmbeddingCreate


class EmbeddingService:
    def __init__(self, backend: EmbeddingBackend) -> None:
        self.backend = backend

    async def create(self, request: EmbeddingCreate) -> dict[str, Any]:
        if request.dimensions is not None and request.dimensions != self.backend.dimensions:
            raise InvalidRequest(
                f"This model's embeddings have {self.backend.dimensions} dimensions; 'dimensions' "
                f"{request.dimensions} cannot be given.",
                param="dimensions",
            )
        embedded = await self.backend.embed(request.texts, kind="query", model=request.model)
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": index, "embedding": _encode(vector, request.encoding_format)}
            for index, vector in enumerate(embedded.vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": request.model,
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
        }


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector
    return base64.b64encode(pack_float32(vector)).decode()

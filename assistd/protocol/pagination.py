"""Cursor pagination as every list endpoint of the API speaks it."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

Order = Literal["asc", "desc"]


class PageRequest(BaseModel):
    """``limit`` (1..100 on most lists, checked where the query is read), ``order`` by creation,
    ``after``/``before`` cursors (object ids)."""

    limit: int = Field(default=20, ge=1)
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


class Page(BaseModel, Generic[T]):
    """``{"object": "list", "data": [...], "first_id", "last_id", "has_more"}``."""

    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool

"""Conversions shared by several services: how request values are stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from assistd.errors import InvalidRequest
from assistd.protocol.common import ToolResources, ToolResourcesCreate


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model, keeping only the fields that were set (sent by the client, or stored)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def stored_tool_resources(value: ToolResources | ToolResourcesCreate | None) -> dict[str, Any]:
    if value is None:
        return {}
    file_search = value.file_search
    if file_search is not None and getattr(file_search, "vector_stores", None):
        # Needs vector stores, which this server does not have yet: refuse rather than drop it silently.
        raise InvalidRequest(
            "Creating vector stores through tool_resources.file_search.vector_stores is not supported "
            "by this server yet; pass vector_store_ids instead.",
            param="tool_resources.file_search.vector_stores",
        )
    return dump(value)

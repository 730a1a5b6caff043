"""Conversions shared by several services: how request values are stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model, keeping only the fields that were set (sent by the client, or stored)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def dump_request(part: BaseModel) -> dict[str, Any]:
    """The stored form of a part of a request (tools, tool resources, attachments, ...). An explicit
    null there means what leaving the field out means, and is not stored: it would come back where the
    reference has an array, an object or an enum."""
    return part.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)

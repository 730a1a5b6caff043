"""Conversions shared by several services: how request values are stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model, keeping only the fields that were set (sent by the client, or stored)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)

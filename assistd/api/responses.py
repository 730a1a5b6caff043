"""Serialising the SDK's models onto the wire."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from assistd.protocol.pagination import Order, PageRequest


def json_response(obj: BaseModel, status_code: int = 200) -> Response:
    # exclude_unset: every top-level field is set explicitly (nullable fields as null), while the SDK's
    # optional nested fields that were never set stay off the wire, as OpenAI's own responses do.
    return Response(
        obj.model_dump_json(exclude_unset=True, by_alias=True),
        status_code=status_code,
        media_type="application/json",
    )


def polled_response(request: Request, obj: BaseModel) -> Response:
    """An object clients poll until it settles (a run, a vector store file or batch): the SDK's pollers
    wait ``openai-poll-after-ms`` between retrievals instead of their default second."""
    response = json_response(obj)
    response.headers["openai-poll-after-ms"] = str(request.app.state.settings.poll_after_ms)
    return response


def dict_response(payload: dict[str, Any]) -> Response:
    """A wire shape the SDK has no model for (a search page, base64 embeddings): plain JSON."""
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


async def page_request(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> PageRequest:
    return PageRequest(limit=limit, order=order, after=after, before=before)


PageQuery = Annotated[PageRequest, Depends(page_request)]

"""/v1/models: the model names this server answers to (see docs/backends.md)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from openai.types import Model
from pydantic import BaseModel

from assistd.api.deps import Models
from assistd.api.responses import json_response
from assistd.backends.routing import ModelNotFound
from assistd.errors import ModelNotFoundError

router = APIRouter(tags=["models"])


class ModelList(BaseModel):
    """Not cursor-paginated: the SDK reads the one page."""

    object: Literal["list"]
    data: list[Model]


def _model(models: Models, name: str, owner: str) -> Model:
    return Model(id=name, object="model", created=models.created, owned_by=owner)


@router.get("/models", response_model=ModelList)
async def list_models(models: Models) -> Response:
    return json_response(
        ModelList(object="list", data=[_model(models, name, owner) for name, owner in models.listed()])
    )


@router.get("/models/{model:path}", response_model=Model)
async def retrieve_model(model: str, models: Models) -> Response:
    owner = dict(models.listed()).get(model)
    if owner is None:
        # Not listed, but answered all the same (a pattern's match, or the default model's stand-in).
        try:
            owner = models.resolve(model).backend_name
        except ModelNotFound:
            raise ModelNotFoundError(model) from None
    return json_response(_model(models, model, owner))

"""/v1/embeddings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from openai.types import CreateEmbeddingResponse

from assistd.api.deps import Embeddings
from assistd.api.responses import dict_response
from assistd.protocol.embeddings import EmbeddingCreate

router = APIRouter(tags=["embeddings"])


@router.post("/embeddings", response_model=CreateEmbeddingResponse)
async def create_embeddings(body: EmbeddingCreate, service: Embeddings) -> Response:
    return dict_response(await service.create(body))

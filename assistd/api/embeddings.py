"""/v1/embeddings."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response
from openai.types import CreateEmbeddingResponse

from assistd.api.deps import Embeddings
from assistd.protocol.embeddings import EmbeddingCreate

router = APIRouter(tags=["embeddings"])


@router.post("/embeddings", response_model=CreateEmbeddingResponse)
async def create_embeddings(body: EmbeddingCreate, service: Embeddings) -> Response:
    answer = await service.create(body)
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")

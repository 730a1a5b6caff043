"""/v1/vector_stores: stores, their files, file batches, and search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from assistd.api.deps import VectorStores
from assistd.api.responses import PageQuery, dict_response, json_response, polled_response
from assistd.protocol.pagination import Page
from assistd.protocol.vector_stores import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileModify,
    VectorStoreModify,
    VectorStoreSearch,
)
from assistd.types import (
    VectorStore,
    VectorStoreDeleted,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)

router = APIRouter(tags=["vector stores"])

FileStatus = Annotated[
    Literal["in_progress", "completed", "failed", "cancelled"] | None, Query(alias="filter")
]


# -- stores ------------------------------------------------------------------------------------------


@router.post("/vector_stores", response_model=VectorStore)
async def create_vector_store(body: VectorStoreCreate, service: VectorStores) -> Response:
    return json_response(await service.create(body))


@router.get("/vector_stores", response_model=Page[VectorStore])
async def list_vector_stores(page: PageQuery, service: VectorStores) -> Response:
    return json_response(await service.list(page))


@router.get("/vector_stores/{vector_store_id}", response_model=VectorStore)
async def retrieve_vector_store(vector_store_id: str, service: VectorStores) -> Response:
    return json_response(await service.get(vector_store_id))


@router.post("/vector_stores/{vector_store_id}", response_model=VectorStore)
async def modify_vector_store(
    vector_store_id: str, body: VectorStoreModify, service: VectorStores
) -> Response:
    return json_response(await service.modify(vector_store_id, body))


@router.delete("/vector_stores/{vector_store_id}", response_model=VectorStoreDeleted)
async def delete_vector_store(vector_store_id: str, service: VectorStores) -> Response:
    return json_response(await service.delete(vector_store_id))


@router.post("/vector_stores/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: str, body: VectorStoreSearch, service: VectorStores
) -> Response:
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    hits = await service.search(vector_store_id, body)
    return dict_response(
        {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "score": hit.score,
                    "attributes": hit.attributes,
                    "content": [{"type": "text", "text": hit.text}],
                }
                for hit in hits
            ],
            "has_more": False,
            "next_page": None,
        }
    )


# -- files -------------------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/files", response_model=VectorStoreFile)
async def create_vector_store_file(
    vector_store_id: str, body: VectorStoreFileCreate, service: VectorStores
) -> Response:
    return json_response(await service.add_file(vector_store_id, body))


@router.get("/vector_stores/{vector_store_id}/files", response_model=Page[VectorStoreFile])
async def list_vector_store_files(
    vector_store_id: str, page: PageQuery, service: VectorStores, status: FileStatus = None
) -> Response:
    return json_response(await service.list_files(vector_store_id, page, status))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFile)
async def retrieve_vector_store_file(
    request: Request, vector_store_id: str, file_id: str, service: VectorStores
) -> Response:
    return polled_response(request, await service.get_file(vector_store_id, file_id))


@router.post("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFile)
async def modify_vector_store_file(
    vector_store_id: str, file_id: str, body: VectorStoreFileModify, service: VectorStores
) -> Response:
    return json_response(await service.modify_file(vector_store_id, file_id, body))


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFileDeleted)
async def delete_vector_store_file(vector_store_id: str, file_id: str, service: VectorStores) -> Response:
    return json_response(await service.remove_file(vector_store_id, file_id))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(vector_store_id: str, file_id: str, service: VectorStores) -> Response:
    text = await service.file_content(vector_store_id, file_id)
    page = {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": text}] if text else [],
        "has_more": False,
        "next_page": None,
    }
    return dict_response(page)


# -- batches -----------------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/file_batches", response_model=VectorStoreFileBatch)
async def create_file_batch(vector_store_id: str, body: FileBatchCreate, service: VectorStores) -> Response:
    return json_response(await service.create_batch(vector_store_id, body))


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}", response_model=VectorStoreFileBatch)
async def retrieve_file_batch(
    request: Request, vector_store_id: str, batch_id: str, service: VectorStores
) -> Response:
    return polled_response(request, await service.get_batch(vector_store_id, batch_id))


@router.post(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", response_model=VectorStoreFileBatch
)
async def cancel_file_batch(vector_store_id: str, batch_id: str, service: VectorStores) -> Response:
    return json_response(await service.cancel_batch(vector_store_id, batch_id))


@router.get(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", response_model=Page[VectorStoreFile]
)
async def list_file_batch_files(
    vector_store_id: str, batch_id: str, page: PageQuery, service: VectorStores, status: FileStatus = None
) -> Response:
    return json_response(await service.list_files(vector_store_id, page, status, batch_id=batch_id))

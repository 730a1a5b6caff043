"""/v1/files: uploads (multipart/form-data), listing, downloads."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from assistd.api.deps import Files
from assistd.api.errors import describe_validation_error
from assistd.api.responses import json_response
from assistd.errors import InvalidRequest
from assistd.protocol.files import FileCreate
from assistd.protocol.pagination import Order, Page, PageRequest
from assistd.protocol.storable import string_problem
from assistd.types import FileDeleted, FileObject

router = APIRouter(tags=["files"])

# The form fields an upload may have; nested objects are flattened the way the SDK sends them.
_FIELDS = frozenset({"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})


@router.post("/files", response_model=FileObject)
async def create_file(request: Request, service: Files) -> Response:
    form = await request.form(max_files=1, max_fields=len(_FIELDS))
    try:
        unknown = next((name for name in form if name not in _FIELDS), None)
        if unknown is not None:
            raise InvalidRequest(f"Unrecognized request argument supplied: {unknown}", param=unknown)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        filename = upload.filename or "file"
        problem = string_problem(filename)
        if problem is not None:
            raise InvalidRequest(f"Invalid file name: {problem}", param="file")
        created = await service.create(upload.file, filename, _fields(form))
    finally:
        await form.close()
    return json_response(created)


def _fields(form: Any) -> FileCreate:
    data: dict[str, Any] = {}
    if "purpose" in form:
        data["purpose"] = form["purpose"]
    expires = {key[len("expires_after[") : -1]: form[key] for key in form if key.startswith("expires_after[")}
    if expires:
        data["expires_after"] = expires
    try:
        return FileCreate.model_validate(data)
    except ValidationError as error:
        message, param = describe_validation_error(error.errors(), data)
        # The form's own spelling of a nested field: expires_after[seconds].
        if param and param.startswith("expires_after."):
            form_name = "expires_after[" + param.removeprefix("expires_after.") + "]"
            message, param = message.replace(f"'{param}'", f"'{form_name}'"), form_name
        raise InvalidRequest(message, param=param) from None


@router.get("/files", response_model=Page[FileObject])
async def list_files(
    service: Files,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Order = "desc",
    after: str | None = None,
) -> Response:
    page = PageRequest(limit=limit, order=order, after=after)
    return json_response(await service.list(page, purpose))


@router.get("/files/{file_id}", response_model=FileObject)
async def retrieve_file(file_id: str, service: Files) -> Response:
    return json_response(await service.get(file_id))


@router.delete("/files/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, service: Files) -> Response:
    return json_response(await service.delete(file_id))


@router.get("/files/{file_id}/content")
async def download_file(file_id: str, service: Files) -> Response:
    found, chunks = await service.content(file_id)
    media_type = mimetypes.guess_type(found.filename)[0] or "application/octet-stream"
    return StreamingResponse(chunks, media_type=media_type, headers={"Content-Length": str(found.bytes)})

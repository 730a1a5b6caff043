"""Every error leaves the server in OpenAI's envelope: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from assistd.backends.base import BackendError
from assistd.errors import (
    AssistdError,
    AuthenticationFailed,
    ContentTooLarge,
    ModelNotFoundError,
    NotFound,
    RateLimited,
)

logger = logging.getLogger("assistd.api")


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


# -- domain errors -------------------------------------------------------------------------------


async def _domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AssistdError)
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, ContentTooLarge):
        return error_response(413, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, ModelNotFoundError):
        return error_response(404, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, AuthenticationFailed):
        return error_response(401, exc.message, code=exc.code or "invalid_api_key")
    if isinstance(exc, RateLimited):
        # "requests": OpenAI's type for request rate limits. The SDK waits retry-after, then retries.
        seconds = max(1, math.ceil(exc.retry_after))
        return error_response(
            429, exc.message, type_="requests", code=exc.code, headers={"retry-after": str(seconds)}
        )
    return error_response(400, exc.message, param=exc.param, code=exc.code)  # InvalidRequest


def backend_error_body(error: BackendError) -> dict[str, Any]:
    """A model's failure in OpenAI's envelope (also sent as a data line in the middle of a stream)."""
    if error.status == 429:
        type_ = "requests"  # OpenAI's type for request rate limits
    else:
        type_ = "invalid_request_error" if error.status < 500 else "server_error"
    return {"error": {"message": error.message, "type": type_, "param": None, "code": error.code}}


async def _backend_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return JSONResponse(backend_error_body(exc), status_code=exc.status)


# -- validation errors ---------------------------------------------------------------------------


def _walk(loc: Sequence[int | str], body: Any) -> list[int | str]:
    """The part of a pydantic error location that is a real path into the input.

    Pydantic puts union member tags into locations: a discriminator's value ("function" for a tool
    whose type is "function", "user" for a message whose role is "user"), or a member's type or class
    name ("str", "list[...]", "NamedToolChoice"); they are not keys of the input. Following the input
    along the location and keeping only the steps that exist drops them, so that
    ``tools.0.function.function.name`` becomes ``tools[0].function.name``.
    """
    path: list[int | str] = []
    node = body
    tag_skipped: object = None  # the node whose discriminator tag was already passed over
    for index, step in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(node, dict) and isinstance(step, str):
            # A tag is never the last step: the error is inside the union member it names.
            is_tag = (
                following is not None
                and step in (node.get("type"), node.get("role"))
                and tag_skipped is not node
            )
            # "function" or "text" can be both the tag and a key: it is the tag when the key follows it,
            # or when what follows is another key of this object (an unknown key beside the tagged one).
            if is_tag and (step not in node or following == step or _sibling(node, step, following)):
                tag_skipped = node
            elif step in node:
                node = node[step]
                path.append(step)
            elif not _looks_like_tag(step):
                path.append(step)  # a missing field: the path ends at it
                node = None
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
            path.append(step)
    return path


def _sibling(node: dict[str, Any], step: str, following: int | str | None) -> bool:
    """Whether ``following`` is a key beside ``step`` in ``node`` rather than a key inside it."""
    inner = node[step]
    return following in node and not (isinstance(inner, dict) and following in inner)


def _looks_like_tag(step: str) -> bool:
    return (
        step in {"str", "int", "float", "bool", "list", "dict", "none"}
        or "[" in step
        or step[:1].isupper()  # a union member's class name; the API's own keys are snake_case
    )


def _param(path: Sequence[int | str]) -> str | None:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text or None


def _describe(error: dict[str, Any], param: str | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    msg = str(error.get("msg", "")).removeprefix("Value error, ").rstrip(".")
    name = f"'{param}'" if param else "the request body"
    if kind == "missing":
        return f"Missing required parameter: {name}."
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}"
    if kind == "string_too_long":
        length = len(error["input"]) if isinstance(error.get("input"), str) else "more"
        return (
            f"Invalid {name}: string too long. Expected a string with maximum length "
            f"{ctx.get('max_length')}, but got a string with length {length} instead."
        )
    if kind == "too_long":
        return (
            f"Invalid {name}: array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead."
        )
    if kind == "too_short":
        return (
            f"Invalid {name}: array too short. Expected an array with minimum length "
            f"{ctx.get('min_length')}, but got an array with length {ctx.get('actual_length')} instead."
        )
    if kind == "json_invalid":
        return f"We could not parse the JSON body of your request. ({ctx.get('error', msg)})"
    # "Input should be ..." reads on as "input should be ..."; "NUL characters ..." stays as it is.
    detail = msg[:1].lower() + msg[1:] if msg[1:2].islower() else msg
    if kind.endswith("_type") or kind in {"model_attributes_type", "model_type"}:
        return f"Invalid type for {name}: {detail}."
    return f"Invalid value for {name}: {detail}."


def describe_validation_error(errors: Sequence[Any], body: Any) -> tuple[str, str | None]:
    """One message and param for a failed validation, as OpenAI reports the first problem it finds."""
    # Several errors usually mean one per union member. The deepest is the one the client meant; among
    # equally deep ones, a branch that failed on the input's type is the one the client did not mean.
    error = max(
        errors, key=lambda item: (len(item.get("loc", ())), not str(item.get("type", "")).endswith("_type"))
    )
    loc = list(error.get("loc", ()))
    source = loc.pop(0) if loc and loc[0] in {"body", "query", "path", "header"} else "body"
    ctx = error.get("ctx") or {}
    if "param" in ctx:
        param: str | None = ctx["param"]
    elif source == "body":
        param = _param(_walk(loc, body))
    else:
        param = _param(loc)
    if error["type"] == "json_invalid":
        param = None
    return _describe(error, param), param


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_validation_error(exc.errors(), exc.body)
    return error_response(400, message, param=param)


# -- framework errors ----------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
    elif exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        message = (
            "We could not parse the JSON body of your request: "
            "it is not valid UTF-8 JSON, or it is nested too deeply."
        )
    else:
        message = str(exc.detail)
    type_ = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_response(exc.status_code, message, type_=type_, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None)
    logger.exception(
        "unhandled error on %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc
    )
    # Starlette answers this outside the middleware that adds the header, so it is added here.
    return error_response(
        500,
        "The server had an error while processing your request.",
        type_="server_error",
        code="server_error",
        headers={"x-request-id": request_id} if request_id else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AssistdError, _domain_error)
    app.add_exception_handler(BackendError, _backend_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

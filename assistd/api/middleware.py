"""Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware on every request)."""

from __future__ import annotations

import json
import secrets
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd import logs, metrics

REQUEST_ID_HEADER = b"x-request-id"


def error_body(message: str, param: str | None = None) -> bytes:
    """An invalid_request_error in OpenAI's envelope, for middleware that answers before the app."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return json.dumps({"error": error}).encode()


async def _send_error(send: Send, status: int, body: bytes, request_id: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER, request_id),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Gives every response an ``x-request-id``, and refuses, before any parsing:

    * bodies over ``max_body_bytes`` (413), by Content-Length or while the body streams in; uploads
      (POST to ``upload_paths``) may be up to ``max_upload_bytes``;
    * an ``OpenAI-Beta: assistants=v1`` header (400): assistd speaks v2 only.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        upload_paths: frozenset[str] = frozenset(),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = f"req_{secrets.token_hex(16)}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        logs.REQUEST_ID.set(request_id.decode())  # this request's task: its log records carry the id
        headers = dict(scope["headers"])

        beta = headers.get(b"openai-beta", b"").decode("latin-1")
        if "assistants=" in beta and "assistants=v2" not in beta:
            message = (
                f"Invalid 'OpenAI-Beta' header '{beta}': this server implements the Assistants API v2 "
                "only. Send 'OpenAI-Beta: assistants=v2' (the openai SDK does since version 1.21)."
            )
            await _send_error(send, 400, error_body(message, "OpenAI-Beta"), request_id)
            return

        upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        too_large = f"Request body too large: this server accepts at most {limit} bytes."
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, error_body(too_large), request_id)
            return

        received = 0

        async def counting_receive() -> Message:
            # A chunked body has no Content-Length: count it as it arrives. The HTTPException reaches
            # the app's error handlers, which answer 413 in the usual envelope.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large)
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, counting_receive, send_with_id)


class RequestMetrics:
    """Counts every HTTP request and times it, by method, route template (never the raw path: ids
    would make every path a series of its own) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The path with each path parameter's value put back as ``{name}``: the route, whatever router
    (and prefix) matched it; "unmatched" when none did."""
    if scope.get("route") is None:
        return "unmatched"
    path: str = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path

"""Idempotency-Key: a POST retried with the same key gets the first answer again instead of doing the
work twice (a second run, a second message).

The key is remembered with the caller's API key (two callers' keys never meet) for
``RETENTION_SECONDS``, with a fingerprint of the request (method, path, query, body):

* the same key with another request is refused (400 naming ``Idempotency-Key``);
* while the first request is still being served, a retry gets 409 with ``retry-after``;
* a first answer that succeeded (2xx) is replayed byte for byte, marked ``idempotent-replayed: true``;
  a streamed one cannot be replayed, and its retries are refused (400) rather than starting the work
  again; any other answer is forgotten, so that a retry is served afresh.

Requests without the header, with a body of unknown length (no Content-Length) or uploads
(multipart) pass through untouched, and so does key management (``/v1/organization/``): its answers
hold new API keys in clear, which are kept nowhere, and its admin key is no project's key.
"""

from __future__ import annotations

import asyncio
import hashlib
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.api.middleware import error_body
from assistd.services.api_keys import ApiKeys
from assistd.store import idempotency
from assistd.store.database import Database

HEADER = b"idempotency-key"
UNCOVERED_PREFIX = "/v1/organization/"  # see the module docstring
RETENTION_SECONDS = 24 * 3600
_STREAMED = -1  # the status remembered for an answer that was a stream
_CLEANUP_ODDS = 0.01  # of a claim: also forget keys past their retention


def _envelope(
    message: str, *, status: int, param: str | None, extra: list[tuple[bytes, bytes]]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = error_body(message, param)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return status, headers, body


class IdempotentRequests:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(UNCOVERED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = headers.get(HEADER)
        length = headers.get(b"content-length", b"")
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        if not key or multipart or not length.isdigit() or int(length) > self.max_body_bytes:
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        authorization = headers.get(b"authorization", b"")
        key_hash = hashlib.sha256(authorization + b"\0" + key).hexdigest()
        fingerprint = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        database: Database = scope["app"].state.database

        if random.random() < _CLEANUP_ODDS:
            async with database.write() as conn:
                await idempotency.forget_older_than(conn, RETENTION_SECONDS)
        remembered = await idempotency.claim(database, key_hash, fingerprint)
        if remembered is not None:
            if await _still_authorized(scope, authorization):
                await _answer(send, *_replay(remembered, fingerprint))
            else:  # a key revoked since: the app answers 401 as for any request of it
                await self.app(scope, _replayed(body, receive), send)
            return

        held: list[Message] = []  # the answer, until it is remembered (then the client may retry)
        streamed = False

        async def remembering_send(message: Message) -> None:
            nonlocal streamed
            if streamed:
                await send(message)
                return
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if 200 <= message["status"] < 300 and content_type.startswith(b"text/event-stream"):
                    # A stream cannot be replayed: say so to retries from its first byte on. Shielded:
                    # a client that leaves during the write must not leave the key claimed but not
                    # remembered, which would answer its retries 409 for the whole retention.
                    streamed = True
                    await asyncio.shield(idempotency.remember(database, key_hash, _STREAMED, None, b""))
                    await send(message)
                    return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await _settle(database, key_hash, held)
                for part in held:
                    await send(part)

        try:
            await self.app(scope, _replayed(body, receive), remembering_send)
        except BaseException:
            if not streamed:
                await idempotency.release(database, key_hash)
            raise


async def _settle(database: Database, key_hash: str, answer: list[Message]) -> None:
    """Remember a whole answer that succeeded; forget the key of any other."""
    start = answer[0]
    status = start["status"]
    if not 200 <= status < 300:
        await idempotency.release(database, key_hash)
        return
    content_type = dict(start.get("headers", [])).get(b"content-type", b"").decode("latin-1")
    body = b"".join(part.get("body", b"") for part in answer[1:])
    await idempotency.remember(database, key_hash, status, content_type or None, body)


def _replay(
    remembered: idempotency.Remembered, fingerprint: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if remembered.fingerprint != fingerprint:
        return _envelope(
            "This Idempotency-Key was used with another request (another path or body); use a new key "
            "for a new request.",
            status=400,
            param="Idempotency-Key",
            extra=[],
        )
    if remembered.status is None:
        return _envelope(
            "A request with this Idempotency-Key is still being processed; retry when it has finished.",
            status=409,
            param="Idempotency-Key",
            extra=[(b"retry-after", b"1")],
        )
    if remembered.status == _STREAMED:
        return _envelope(
            "The request with this Idempotency-Key was streamed, and a stream cannot be replayed; its work "
            "was done once. Retrieve its results instead.",
            status=400,
            param="Idempotency-Key",
            extra=[],
        )
    body = remembered.body or b""
    headers = [
        (b"content-type", (remembered.content_type or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    return remembered.status, headers, body


async def _still_authorized(scope: Scope, authorization: bytes) -> bool:
    keys: ApiKeys = scope["app"].state.api_keys
    if await keys.is_open():
        return True
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and await keys.project_of(token.strip()) is not None


def _replayed(body: bytes, receive: Receive) -> Receive:
    """The request's body, read already, for the app to read again; then the connection's own messages
    (a disconnect, which a streaming response waits for)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)

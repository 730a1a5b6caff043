"""The web playground: one page at ``/`` and its assets under ``/playground/``.

The page is built from ``web/`` (``make playground``) into ``static/`` here, which is committed, so
serving it needs no Node. It holds no data and needs no key: it calls ``/v1`` with the key the user
types, like any other client.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

STATIC_DIR = Path(__file__).parent / "static"

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

# The page talks to this server only, and runs no inline code: a script that found its way into an
# answer the page shows could neither run nor send the key anywhere else.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    # Revalidated on every load (a 304 when unchanged): a new build is seen at once, without a stale
    # module next to a fresh one.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str
    stamp: tuple[int, int]  # the file's mtime and size when read


_loaded: dict[Path, Asset] = {}


def _load(path: Path, media_type: str) -> Asset:
    """The file, read again only when it changed: a rebuild shows without a restart."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    found = _loaded.get(path)
    if found is None or found.stamp != stamp:
        body = path.read_bytes()
        found = _loaded[path] = Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"', stamp)
    return found


def _asset_names() -> dict[str, str]:
    """The files the page may load, by name, with their media types: a name from a request is only
    looked up here, never joined to a path unchecked."""
    return {
        path.name: _MEDIA_TYPES[path.suffix]
        for path in sorted(STATIC_DIR.iterdir())
        if path.suffix in _MEDIA_TYPES and path.is_file()
    }


def _respond(request: Request, asset: Asset, extra: dict[str, str] | None = None) -> Response:
    headers = {**_HEADERS, "ETag": asset.etag, **(extra or {})}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def page(request: Request) -> Response:
    index = _load(STATIC_DIR / "index.html", "text/html; charset=utf-8")
    return _respond(request, index, {"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/playground/{name}")
async def asset(request: Request, name: str) -> Response:
    media_type = _asset_names().get(name)
    if media_type is None:
        raise HTTPException(404)
    return _respond(request, _load(STATIC_DIR / name, media_type))

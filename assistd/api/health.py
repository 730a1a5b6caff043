"""Liveness and readiness, outside /v1 and without authentication (for load balancers and probes)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistd.store.database import Database

router = APIRouter(tags=["health"])
logger = logging.getLogger("assistd.api")


@router.get("/health")
async def health() -> JSONResponse:
    """The process is up and serving HTTP."""
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """The database answers; 503 otherwise."""
    database: Database = request.app.state.database
    try:
        await database.ping()
    except Exception as exc:
        logger.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})

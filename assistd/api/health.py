"""Liveness, readiness and metrics, outside /v1 and without authentication (for load balancers, probes
and Prometheus; keep them off networks that should not see them)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assistd import metrics
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


@router.get("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus' text format: this process's requests, streams and model calls, and the database's runs."""
    body = await metrics.render(request.app.state.database)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)

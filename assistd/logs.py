"""Logging: one handler on the root logger (uvicorn's loggers included), as text for people or JSON
lines for log collectors (``ASSISTD_LOG_FORMAT``), each record with the request id and the run id it
was logged under, when there is one.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

# Set by the request middleware and by each run's executor task; read by every record logged under them.
REQUEST_ID: ContextVar[str | None] = ContextVar("assistd_request_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("assistd_run_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id, run_id = REQUEST_ID.get(), RUN_ID.get()
        ids = [f"{name}={value}" for name, value in (("request", request_id), ("run", run_id)) if value]
        # Extra attributes of the record, as ``logger.info(..., extra=...)`` would set them.
        record.__dict__.update(
            request_id=request_id, run_id=run_id, context=f" [{' '.join(ids)}]" if ids else ""
        )
        return True


def configure(level: str, format_: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context())
    if format_ == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(run_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every plugin it loads at INFO; only its warnings are news to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)

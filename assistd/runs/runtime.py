"""The runs machinery of one process, as services see it."""

from __future__ import annotations

from dataclasses import dataclass

from assistd.runs.executor import Engine
from assistd.runs.worker import Worker


@dataclass
class Runtime:
    engine: Engine
    worker: Worker
    run_ttl_seconds: int

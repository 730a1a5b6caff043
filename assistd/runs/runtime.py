"""The runs machinery of one process, as services see it."""

from __future__ import annotations

from dataclasses import dataclass

from assistd.runs.executor import Engine


@dataclass
class Runtime:
    engine: Engine
    run_ttl_seconds: int
    max_active_runs: int = 0  # per project; 0: no limit

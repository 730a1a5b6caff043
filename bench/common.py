"""What the benchmarks share: server subprocesses (assistd and the floor), ports, statistics, reporting.

The floor is a bare Starlette app served by uvicorn with the same settings as assistd; it answers
fixed bytes for a list of method + path shapes. It runs as its own process, started from this file:
``python bench/common.py --serve-floor SPEC.json --port N`` (see ``start_floor``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import httpx

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Both servers get exactly these uvicorn settings (assistd's come from assistd/cli.py::_serve, with
# ASSISTD_LOG_LEVEL=warning so that uvicorn's access log, logged at INFO, stays silent).
LOG_LEVEL = "warning"
TIMEOUT_KEEP_ALIVE = 30
HEADERS = {
    "authorization": "Bearer sk-bench",
    "openai-beta": "assistants=v2",
    "content-type": "application/json",
    "accept": "application/json",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0  # the log's size when the process started
    cwd: Path | None = None  # where it runs (``python -m assistd`` imports the assistd found there first)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT_S} s:\n{self.log()}")

    def ready(self) -> bool:
        """Whether the started process serves: its /health answers."""
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def log_since_start(self) -> str:
        return self.log()[self._log_offset :]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}


@contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def assistd_server(
    root: Path, env: dict[str, str] | None = None, name: str = "assistd", checkout: Path | None = None
) -> ServerProcess:
    """assistd on SQLite in a fresh data dir under ``root``, logging at warning to ``root/NAME.log``;
    the code of ``checkout`` (another commit's worktree, say) instead of the installed one if given."""
    data_dir = root / f"{name}-data"
    data_dir.mkdir()
    port = free_port()
    return ServerProcess(
        name,
        [sys.executable, "-m", "assistd", "serve", "--host", HOST, "--port", str(port)],
        {
            **base_env(),
            "ASSISTD_DATA_DIR": str(data_dir),
            "ASSISTD_LOG_LEVEL": LOG_LEVEL,
            "ASSISTD_DEFAULT_MODEL": "scripted",
            **(env or {}),
        },
        root / f"{name}.log",
        port,
        cwd=checkout,
    )


# -- the floor app ------------------------------------------------------------------------------------


class FloorRoute(TypedDict):
    pattern: str  # Starlette route path
    method: str
    body: str  # the exact bytes (UTF-8) answered
    media_type: str


def start_floor(root: Path, routes: list[FloorRoute]) -> ServerProcess:
    """The floor process (not started yet) answering ``routes``; its spec and log go under ``root``."""
    spec = root / "floor-spec.json"
    spec.write_text(json.dumps(routes), encoding="utf-8")
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-floor", str(spec), "--port", str(port)]
    return ServerProcess("floor", command, base_env(), root / "floor.log", port)


def serve_floor(spec_path: Path, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    spec: list[FloorRoute] = json.loads(spec_path.read_text(encoding="utf-8"))

    def endpoint(payload: bytes, media_type: str, reads_body: bool) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            if reads_body:
                await request.body()
            return Response(payload, media_type=media_type)

        return handle

    routes = [
        Route(
            item["pattern"],
            endpoint(item["body"].encode("utf-8"), item["media_type"], item["method"] == "POST"),
            methods=[item["method"]],
        )
        for item in spec
    ]
    routes.append(Route("/health", endpoint(b'{"status":"ok"}', "application/json", False), methods=["GET"]))
    uvicorn.run(
        Starlette(routes=routes),
        host=HOST,
        port=port,
        log_level=LOG_LEVEL,
        timeout_keep_alive=TIMEOUT_KEEP_ALIVE,
    )


# -- statistics and reporting -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)  # seconds, one per request (or run)
    wall: float = 0.0  # seconds spent in measured rounds
    cpu: float = 0.0  # server CPU seconds during measured rounds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def mean(self) -> float:
        return mean(self.latencies)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / len(self.latencies)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def command_line() -> str:
    """How this run was started, with the interpreter relative to the working directory when inside it."""
    python = os.path.relpath(sys.executable)
    if python.startswith(".."):
        python = sys.executable
    return shlex.join([python, *sys.argv])


def versions() -> str:
    import starlette
    import uvicorn

    return (
        f"nproc {os.cpu_count()}, Python {platform.python_version()}, uvicorn {uvicorn.__version__}, "
        f"starlette {starlette.__version__}, httpx {httpx.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the floor app (started by the benchmarks).")
    parser.add_argument("--serve-floor", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve_floor(args.serve_floor, args.port)


if __name__ == "__main__":
    main()


def report_log(server: ServerProcess, *, always: bool) -> None:
    """The server logs nothing per request at warning; print its tail if it logged more than the
    open-mode warning, or when asked to."""
    lines = [line for line in server.log().splitlines() if "No API key exists: open mode" not in line]
    if lines or always:
        print(
            f"--- {server.name} log ({server.log_path}): {len(lines)} lines besides the open-mode warning;"
            f" tail:\n{server.log_tail()}\n---",
            file=sys.stderr,
            flush=True,
        )


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table; its first ``left`` columns align left, the rest (numbers) right."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)

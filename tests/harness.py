"""Starting real assistd servers for the tests.

The tests are black-box: they import nothing from assistd. A server runs as its own process (uvicorn
on a free port, a fresh data dir), started with ``ASSISTD_TEST_SERVER_PYTHON`` (default: this
interpreter), so that the same tests can drive it from a venv with an older ``openai`` SDK.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

SERVER_PYTHON = os.environ.get("ASSISTD_TEST_SERVER_PYTHON", sys.executable)
PG_ADMIN_URL = os.environ.get("ASSISTD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running assistd process."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)  # more arguments of `assistd serve`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Server:
        self.process = _spawn(
            ["serve", "--port", str(self.port), *self.args], self.data_dir, self.env, self.log_path
        )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"assistd exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"assistd did not start within {START_TIMEOUT_S} s:\n{self.log()}")

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown code of the server runs."""
        _kill(self.process)


@dataclass
class WorkerProcess:
    """A running `assistd worker` (runs only, no API), on a PostgreSQL shared with servers."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "worker.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def id(self) -> str:
        """The worker id it logged at its start (the lease owner of the runs it executes)."""
        match = re.search(r"worker (wrk_[0-9a-f]+) executing", self.log())
        assert match, self.log()
        return match.group(1)

    def start(self) -> WorkerProcess:
        self.process = _spawn(["worker"], self.data_dir, self.env, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "executing up to" not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"assistd worker exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                _stop(self.process)
                raise RuntimeError(f"assistd worker did not start within {START_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        _kill(self.process)


def run_cli(arguments: list[str], data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``assistd ARGUMENTS`` with a server's settings (its data dir and environment), to completion."""
    return subprocess.run(
        [SERVER_PYTHON, "-m", "assistd", *arguments],
        env=_environment(data_dir, env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _environment(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """A process's environment: this one's without any ASSISTD_ setting, then the data dir, the
    defaults of the tests, and ``env``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")},
        "ASSISTD_DATA_DIR": str(data_dir),
        # Run logic is tested on the deterministic model; tests of real models ask for them.
        "ASSISTD_DEFAULT_MODEL": "scripted",
        **env,
    }


def _spawn(
    arguments: list[str], data_dir: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [SERVER_PYTHON, "-m", "assistd", *arguments],
            env=_environment(data_dir, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.kill()
    process.wait(timeout=15)


# PostgreSQL databases are made and dropped with the server's interpreter, which has asyncpg.
_PG_SCRIPT = """
import asyncio, sys, asyncpg
async def main(url, action, name):
    conn = await asyncpg.connect(url)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
asyncio.run(main(*sys.argv[1:]))
"""


def postgres_enabled() -> bool:
    return os.environ.get("ASSISTD_TEST_PG", "on").lower() not in {"off", "0", "false", "no"}


def pgvector_enabled() -> bool:
    """Whether the tests marked ``pgvector`` also run on a PostgreSQL with pgvector (ASSISTD_TEST_PGVECTOR,
    on by default; always off with ASSISTD_TEST_PG=off)."""
    switch = os.environ.get("ASSISTD_TEST_PGVECTOR", "on").lower()
    return postgres_enabled() and switch not in {"off", "0", "false", "no"}


def _pg(admin_url: str, action: str, name: str) -> None:
    result = subprocess.run(
        [SERVER_PYTHON, "-c", _PG_SCRIPT, admin_url, action, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL at {admin_url} is needed for the PostgreSQL half of the suite "
            f"(set ASSISTD_TEST_PG=off to skip it): {action} database failed:\n{result.stderr}"
        )


# The admin URL of each database made here, by its URL: it is dropped through the same server.
_admin_urls: dict[str, str] = {}


def create_pg_database(admin_url: str = PG_ADMIN_URL) -> str:
    """A fresh database on the server of ``admin_url``; returns its SQLAlchemy URL for
    ASSISTD_DATABASE_URL."""
    name = f"assistd_test_{secrets.token_hex(6)}"
    _pg(admin_url, "create", name)
    url = urlunsplit(urlsplit(admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}"))
    _admin_urls[url] = admin_url
    return url


def drop_pg_database(url: str) -> None:
    _pg(_admin_urls.pop(url, PG_ADMIN_URL), "drop", urlsplit(url).path.lstrip("/"))


@contextmanager
def pgvector_postgres(root: Path) -> Iterator[str]:
    """A PostgreSQL server with the pgvector extension, started in ``root`` from the build that the
    ``pgserver`` package ships (PostgreSQL 16, pgvector 0.6; nothing is downloaded), stopped and deleted
    after; yields its admin URL. It listens on a Unix socket in its data directory only. As root,
    pgserver runs it as a user of its own, ``pgserver``, which it adds if missing."""
    with warnings.catch_warnings():
        # platformdirs warns, when pgserver is imported, that XDG_RUNTIME_DIR is unset (root in a
        # container); the suite turns warnings into errors.
        warnings.simplefilter("ignore")
        import pgserver

        instance = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        yield instance.get_uri()
    finally:
        instance.cleanup()


@contextmanager
def backend_server(
    backend: str, data_dir: Path, *, pg_admin_url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A running server on ``backend``: "sqlite", or "postgres" (the server of ``pg_admin_url``, by
    default the machine's) or "pgvector" (the server of ``pg_admin_url``, which must have pgvector) with
    a fresh database dropped after; ``env`` holds more settings."""
    env = dict(env or {})
    database_url = None
    if backend in ("postgres", "pgvector"):
        if backend == "postgres" and not postgres_enabled():
            pytest.skip("ASSISTD_TEST_PG=off")
        if backend == "pgvector" and not pgvector_enabled():
            pytest.skip("ASSISTD_TEST_PGVECTOR=off or ASSISTD_TEST_PG=off")
        if backend == "pgvector" and pg_admin_url is None:
            raise ValueError("the pgvector backend needs the admin URL of a server with pgvector")
        database_url = create_pg_database(pg_admin_url or PG_ADMIN_URL)
        env["ASSISTD_DATABASE_URL"] = database_url
    instance = Server(data_dir=data_dir, env=env)
    try:
        yield instance.start()
    finally:
        instance.stop()
        # The pgvector server is deleted whole, with its databases, when the session ends; dropping its
        # database first was seen to fail there, as the session ended.
        if database_url and backend != "pgvector":
            drop_pg_database(database_url)


class TcpGate:
    """A TCP relay to ``target`` (host, port) on a port of its own that a test can shut: ``shut()``
    refuses new connections and cuts the open ones, as a database server that restarts or fails over
    does to its clients; ``open()`` lets connections through again, on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> TcpGate:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def shut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            cut, self._open = self._open, []
        for sock in ([listener] if listener else []) + cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # shut
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

"""Starting real assistd servers for the tests.

The tests are black-box: they import nothing from assistd. A server runs as its own process (uvicorn
on a free port, a fresh data dir), started with ``ASSISTD_TEST_SERVER_PYTHON`` (default: this
interpreter), so that the same tests can drive it from a venv with an older ``openai`` SDK.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")},
            "ASSISTD_DATA_DIR": str(self.data_dir),
            # Run logic is tested on the deterministic model; tests of real models ask for them.
            "ASSISTD_DEFAULT_MODEL": "scripted",
            **self.env,
        }
        command = [SERVER_PYTHON, "-m", "assistd", "serve", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
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
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown code of the server runs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=15)


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


def _pg(action: str, name: str) -> None:
    result = subprocess.run(
        [SERVER_PYTHON, "-c", _PG_SCRIPT, PG_ADMIN_URL, action, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL at {PG_ADMIN_URL} is needed for the PostgreSQL half of the suite "
            f"(set ASSISTD_TEST_PG=off to skip it): {action} database failed:\n{result.stderr}"
        )


def create_pg_database() -> str:
    """A fresh database; returns its SQLAlchemy URL for ASSISTD_DATABASE_URL."""
    name = f"assistd_test_{secrets.token_hex(6)}"
    _pg("create", name)
    admin = httpx.URL(PG_ADMIN_URL)
    return str(admin.copy_with(scheme="postgresql+asyncpg", path=f"/{name}"))


def drop_pg_database(url: str) -> None:
    _pg("drop", httpx.URL(url).path.lstrip("/"))


@contextmanager
def backend_server(backend: str, data_dir: Path) -> Iterator[Server]:
    """A running server on ``backend`` ("sqlite", or "postgres" with a fresh database dropped after)."""
    env: dict[str, str] = {}
    database_url = None
    if backend == "postgres":
        if not postgres_enabled():
            pytest.skip("ASSISTD_TEST_PG=off")
        database_url = create_pg_database()
        env["ASSISTD_DATABASE_URL"] = database_url
    instance = Server(data_dir=data_dir, env=env)
    try:
        yield instance.start()
    finally:
        instance.stop()
        if database_url:
            drop_pg_database(database_url)

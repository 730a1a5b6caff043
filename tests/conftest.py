"""Fixtures: live assistd servers (SQLite and PostgreSQL) and the official SDK's clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.harness import Server, backend_server, pgvector_enabled, pgvector_postgres, postgres_enabled
from tests.run_support import TEST_BUDGET_S, time_limit

# ASSISTD_TEST_PG=off leaves the PostgreSQL half out (not skipped: not collected at all).
BACKENDS = ["sqlite", "postgres"] if postgres_enabled() else ["sqlite"]
# PostgreSQL with pgvector, where search ranks vectors in the database: only for the tests marked
# ``pgvector`` (the rest of the store is the same PostgreSQL code, which "postgres" covers).
PGVECTOR = ["pgvector"] if pgvector_enabled() else []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pgvector: also run against PostgreSQL with pgvector (a server of the pgserver package)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses a server runs once per store backend, unless marked with one backend.
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backend")
        if marker:
            names = [marker.args[0]]
        else:
            names = BACKENDS + (PGVECTOR if metafunc.definition.get_closest_marker("pgvector") else [])
        metafunc.parametrize("backend", names, scope="session")


@pytest.fixture(autouse=True)
def _time_limit() -> Iterator[None]:
    """A test that hangs (an SDK poller with no deadline of its own, a stream that never ends) fails
    with a TimeoutError instead of holding the suite; fixtures of wider scope are set up before it."""
    with time_limit(TEST_BUDGET_S, "the test"):
        yield


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pgvector_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of a PostgreSQL with pgvector, started once for the session (in a temporary
    directory) and deleted after."""
    if not pgvector_enabled():
        pytest.skip("ASSISTD_TEST_PGVECTOR=off or ASSISTD_TEST_PG=off")
    with pgvector_postgres(tmp_path_factory.mktemp("pgvector")) as url:
        yield url


@pytest.fixture(scope="session")
def server(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One shared server per backend for the whole session; each test makes its own objects."""
    # Only the pgvector backend starts that PostgreSQL.
    admin_url = request.getfixturevalue("pgvector_admin_url") if backend == "pgvector" else None
    with backend_server(
        backend, tmp_path_factory.mktemp(f"assistd-{backend}"), pg_admin_url=admin_url
    ) as instance:
        yield instance


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts a dedicated SQLite server with extra ``ASSISTD_*`` settings; stopped after the test."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        instance = Server(data_dir=tmp_path / f"server{len(started)}", env=env).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


def make_client(server: Server, **kwargs: object) -> openai.OpenAI:
    # No retries: a test must see the first answer, not a retried one.
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def client(server: Server) -> Iterator[openai.OpenAI]:
    with make_client(server) as sdk:
        yield sdk


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """Raw HTTP, for what the SDK would never send (malformed JSON, huge bodies, ...)."""
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer sk-test"}) as raw:
        yield raw

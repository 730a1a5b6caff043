"""The server around the endpoints: health, readiness, docs, auth, headers, CLI."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.harness import (
    SERVER_PYTHON,
    Server,
    TcpGate,
    create_pg_database,
    drop_pg_database,
    postgres_enabled,
)


def test_health_and_ready(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok"}


def test_every_response_has_a_request_id(http: httpx.Client) -> None:
    ids = {
        http.get("/health").headers["x-request-id"],
        http.get("/v1/assistants").headers["x-request-id"],
        http.get("/v1/assistants/asst_missing").headers["x-request-id"],
        http.post("/v1/assistants", content=b"{").headers["x-request-id"],
    }
    assert len(ids) == 4
    assert all(value.startswith("req_") for value in ids)


def test_docs_and_openapi(http: httpx.Client) -> None:
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    spec = http.get("/openapi.json").json()
    for path in ("/v1/assistants", "/v1/threads", "/v1/threads/{thread_id}/messages/{message_id}"):
        assert path in spec["paths"]


@pytest.mark.parametrize("beta", ["assistants=v2", None])
def test_beta_header_v2_or_absent_is_accepted(http: httpx.Client, beta: str | None) -> None:
    headers = {"OpenAI-Beta": beta} if beta else {}
    assert http.get("/v1/assistants", headers=headers).status_code == 200


def test_beta_header_v1_is_refused_naming_v2(http: httpx.Client) -> None:
    response = http.get("/v1/assistants", headers={"OpenAI-Beta": "assistants=v1"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "OpenAI-Beta"
    assert "assistants=v2" in error["message"]


@pytest.mark.backend("sqlite")
def test_api_keys(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_API_KEYS="sk-one, sk-two")
    with httpx.Client(base_url=server.url) as http:
        missing = http.get("/v1/assistants")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        assert missing.json()["error"]["code"] == "missing_api_key"
        # Liveness stays open for probes.
        assert http.get("/health").status_code == 200

    with make_client(server) as wrong, pytest.raises(openai.AuthenticationError) as info:
        wrong.beta.assistants.list()
    assert info.value.code == "invalid_api_key"
    assert "sk-test" not in str(info.value.body)  # the key is not echoed back whole

    for key in ("sk-one", "sk-two"):
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as right:
            assert right.beta.assistants.create(model="m").model == "m"


@pytest.mark.backend("sqlite")
def test_open_mode_warns_at_start(start_server: Callable[..., Server]) -> None:
    server = start_server()
    assert "open mode" in server.log()


def test_cli_version() -> None:
    result = subprocess.run([SERVER_PYTHON, "-m", "assistd", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("assistd ")


def test_cli_migrate_on_a_fresh_data_dir(tmp_path: Path) -> None:
    env = {"ASSISTD_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # a second run finds nothing to do
        result = subprocess.run(
            [SERVER_PYTHON, "-m", "assistd", "migrate"], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(r"database is at revision \d{4}", result.stdout.strip())
    assert (tmp_path / "data" / "assistd.db").exists()


@pytest.mark.skipif(not postgres_enabled(), reason="ASSISTD_TEST_PG=off")
def test_ready_reports_an_unreachable_database(start_server: Callable[..., Server]) -> None:
    url = create_pg_database()
    try:
        server = start_server(ASSISTD_DATABASE_URL=url)
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/ready").status_code == 200
            drop_pg_database(url)
            ready = http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["database"] == "unreachable"
            assert http.get("/health").status_code == 200
    finally:
        drop_pg_database(url)


@pytest.mark.skipif(not postgres_enabled(), reason="ASSISTD_TEST_PG=off")
def test_requests_wait_out_a_database_that_refuses_connections_for_a_moment(
    start_server: Callable[..., Server],
) -> None:
    # A restart or failover of PostgreSQL (or a moment at max_connections) cuts the pool's connections
    # and refuses new ones; a request that comes then is answered once the database is back.
    url = create_pg_database()
    target = urlsplit(url)
    gate = TcpGate((target.hostname or "127.0.0.1", target.port or 5432)).open()
    try:
        server = start_server(
            ASSISTD_DATABASE_URL=url.replace(target.netloc, f"postgres@127.0.0.1:{gate.port}")
        )
        with make_client(server) as client:
            assistant = client.beta.assistants.create(model="gpt-4o", name="kept")
            gate.shut()
            reopen = threading.Timer(0.5, gate.open)
            reopen.start()
            try:
                assert client.beta.assistants.retrieve(assistant.id).name == "kept"
            finally:
                reopen.join()
            assert client.beta.assistants.update(assistant.id, name="changed").name == "changed"
        assert "database connection refused, trying again" in server.log()
    finally:
        gate.shut()
        drop_pg_database(url)

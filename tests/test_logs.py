"""ASSISTD_LOG_FORMAT=json: every log line is a JSON object, with the request id of the request and
the run id of the run it was logged under."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.harness import Server
from tests.run_support import make_sdk, wait_for_run


@pytest.mark.backend("sqlite")
def test_json_log_lines_carry_request_and_run_ids(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_LOG_FORMAT="json")
    with make_sdk(server) as client:
        created = client.beta.assistants.with_raw_response.create(model="gpt-4o")
        request_id = created.headers["x-request-id"]
        assistant = created.parse()
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "log me"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert wait_for_run(client, thread.id, run.id, timeout=10).status == "completed"
    httpx.get(f"{server.url}/health")  # the run's last log line is written before this answers

    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    access = [r for r in records if r["logger"] == "uvicorn.access" and r["request_id"] == request_id]
    assert len(access) == 1
    assert "POST /v1/assistants" in access[0]["message"]
    ended = [r for r in records if r["run_id"] == run.id]
    assert [r["message"] for r in ended] == ["run completed"]
    assert ended[0]["logger"] == "assistd.runs"
    assert ended[0]["request_id"] is None  # logged by the worker, not under a request

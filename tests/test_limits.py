"""Limits: requests per key per minute and active runs per project answer 429 with retry-after, which
the SDK honours."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.harness import Server
from tests.run_support import make_sdk, wait_for_run, wait_for_status


@pytest.mark.backend("sqlite")
def test_a_key_over_its_request_rate_waits_as_told(start_server: Callable[..., Server]) -> None:
    # 120 a minute: two more each second once the burst is spent.
    server = start_server(ASSISTD_RATE_LIMIT_PER_MINUTE="120")
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer sk-busy"}) as http:
        answers = [http.get("/v1/assistants").status_code for _ in range(125)]
        assert answers[:120] == [200] * 120
        refused = http.get("/v1/assistants")
        assert refused.status_code == 429
        assert refused.json()["error"] == {
            "message": refused.json()["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        assert "120 requests per minute" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        # Health is not an API call, and other keys have their own allowance.
        assert http.get("/health").status_code == 200
        other = http.get("/v1/assistants", headers={"Authorization": "Bearer sk-calm"})
        assert other.status_code == 200
    # The SDK waits for retry-after and tries again: the user's call succeeds.
    with make_sdk(server, api_key="sk-busy", max_retries=3) as client:
        started = time.monotonic()
        for _ in range(5):
            client.beta.assistants.list()
        assert time.monotonic() - started >= 0.9


@pytest.mark.backend("sqlite")
def test_a_project_over_its_active_runs_is_told_to_wait(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_MAX_ACTIVE_RUNS="1")
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        busy = client.beta.threads.create(messages=[{"role": "user", "content": "/sleep 30"}])
        first = client.beta.threads.runs.create(busy.id, assistant_id=assistant.id)
        wait_for_status(client, busy.id, first.id, "in_progress", timeout=10)
        other = client.beta.threads.create(messages=[{"role": "user", "content": "my turn"}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.beta.threads.runs.create(other.id, assistant_id=assistant.id)
        assert refused.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert refused.value.response.headers["retry-after"] == "1"
        # Nothing was written: the thread has no run.
        assert client.beta.threads.runs.list(other.id).data == []

        client.beta.threads.runs.cancel(first.id, thread_id=busy.id)
        assert wait_for_run(client, busy.id, first.id, timeout=10).status == "cancelled"
        second = client.beta.threads.runs.create(other.id, assistant_id=assistant.id)
        assert wait_for_run(client, other.id, second.id, timeout=10).status == "completed"


def test_one_request_creates_at_most_a_thousand_messages(client: openai.OpenAI) -> None:
    one = {"role": "user", "content": "x"}
    thread = client.beta.threads.create(messages=[one] * 1000)
    assert len(client.beta.threads.messages.list(thread.id, limit=100).data) == 100
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create(messages=[one] * 1001)
    assert refused.value.body["param"] == "messages"  # type: ignore[index]
    assistant = client.beta.assistants.create(model="gpt-4o")
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(
            thread.id, assistant_id=assistant.id, additional_messages=[one] * 1001
        )
    assert refused.value.body["param"] == "additional_messages"  # type: ignore[index]
    assert client.beta.threads.runs.list(thread.id).data == []

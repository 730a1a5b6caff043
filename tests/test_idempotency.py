"""Idempotency-Key: a retried POST gets the first answer again, and the work is done once."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.run_support import BETA, raw_stream, read_sse, wait_for_run


def _key(name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    # Unique per test and backend: the shared server remembers keys for a day.
    return {"Idempotency-Key": f"{name}-{request.node.name}"}


def test_a_retried_create_returns_the_first_object(
    client: openai.OpenAI, request: pytest.FixtureRequest
) -> None:
    key = _key("assistant", request)
    first = client.beta.assistants.with_raw_response.create(model="gpt-4o", name="once", extra_headers=key)
    again = client.beta.assistants.with_raw_response.create(model="gpt-4o", name="once", extra_headers=key)
    assert again.parse().id == first.parse().id
    assert again.http_response.content == first.http_response.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]

    # The same key with another request is a mistake the caller hears about.
    with pytest.raises(openai.BadRequestError) as reused:
        client.beta.assistants.create(model="gpt-4o", name="twice", extra_headers=key)
    assert reused.value.body["param"] == "Idempotency-Key"  # type: ignore[index]

    # Another caller's key of the same name is another key.
    other = client.with_options(api_key="sk-someone-else")
    assert other.beta.assistants.create(model="gpt-4o", name="once", extra_headers=key).id != first.parse().id


def test_a_retried_run_runs_once(client: openai.OpenAI, request: pytest.FixtureRequest) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "only once"}])
    key = _key("run", request)
    first = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, extra_headers=key)
    wait_for_run(client, thread.id, first.id, timeout=10)
    again = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, extra_headers=key)
    assert again.id == first.id
    assert again.status == "queued"  # the first answer, as it was
    assert [run.id for run in client.beta.threads.runs.list(thread.id)] == [first.id]


def test_failures_are_not_remembered(client: openai.OpenAI, request: pytest.FixtureRequest) -> None:
    key = _key("missing", request)
    missing = "thread_" + "0" * 24
    for _ in range(2):
        with pytest.raises(openai.NotFoundError) as refused:
            client.beta.threads.messages.create(missing, role="user", content="x", extra_headers=key)
        assert "idempotent-replayed" not in refused.value.response.headers


def test_a_streamed_run_is_not_started_again(
    client: openai.OpenAI, http: httpx.Client, request: pytest.FixtureRequest
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "stream once"}])
    body = {"assistant_id": assistant.id, "stream": True}
    key = _key("stream", request)
    path = f"/v1/threads/{thread.id}/runs"
    with http.stream("POST", path, json=body, headers={**BETA, **key}, timeout=10) as response:
        events = [event.event for event in read_sse(response.iter_lines())]
    assert events[-2:] == ["thread.run.completed", "done"]
    refused = http.post(path, json=body, headers={**BETA, **key})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "Idempotency-Key"
    assert len(client.beta.threads.runs.list(thread.id).data) == 1
    # Without the key, the same request is a new run, as always.
    with raw_stream(http, path, body) as response:
        assert response.status_code == 200
        list(read_sse(response.iter_lines()))
    assert len(client.beta.threads.runs.list(thread.id).data) == 2

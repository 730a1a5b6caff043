"""GET /metrics: Prometheus' text format, with the counters a run and a chat completion move."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.harness import Server
from tests.run_support import make_sdk, wait_for_run

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.backend("sqlite")
def test_metrics_count_requests_runs_streams_and_model_tokens(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with make_sdk(server) as client, httpx.Client(base_url=server.url) as http:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "count me"}])
        polled = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert wait_for_run(client, thread.id, polled.id, timeout=10).status == "completed"
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            stream.until_done()
        chat = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert chat.usage is not None
        with pytest.raises(openai.NotFoundError):
            client.beta.assistants.retrieve("asst_" + "0" * 24)

        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)

    requests = "assistd_http_requests_total"
    runs_route = "/v1/threads/{thread_id}/runs"
    assert _value(samples, requests, method="POST", route=runs_route, status="200") == 2
    assert _value(samples, requests, method="POST", route="/v1/assistants", status="200") == 1
    assert _value(samples, requests, method="GET", route="/v1/assistants/{assistant_id}", status="404") == 1
    assert _value(samples, requests, method="POST", route="/v1/chat/completions", status="200") == 1
    # Never a raw path: an id would make a series per object.
    assert not any(
        "asst_" in value for (name, labels), _ in samples.items() if name == requests for _, value in labels
    )
    assert (
        _value(samples, "assistd_http_request_duration_seconds_count", method="POST", route=runs_route) == 2
    )

    assert _value(samples, "assistd_runs", status="completed") == 2
    assert _value(samples, "assistd_runs", status="queued") == 0
    assert _value(samples, "assistd_run_queue_depth") == 0
    assert _value(samples, "assistd_active_streams") == 0  # the stream ended

    # Two runs and a chat completion: three model calls, with their tokens.
    assert _value(samples, "assistd_model_call_duration_seconds_count", backend="scripted") == 3
    completion = _value(samples, "assistd_model_tokens_total", backend="scripted", direction="completion")
    prompt = _value(samples, "assistd_model_tokens_total", backend="scripted", direction="prompt")
    assert completion >= 3
    assert prompt > completion  # the prompts carry the instructions and the thread

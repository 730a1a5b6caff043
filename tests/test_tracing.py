"""OpenTelemetry tracing, configured by the standard OTEL_* variables: the server exports its spans over
OTLP/HTTP to a receiver started here, which keeps what it is sent; the spans are decoded with the
server's interpreter (its `otel` extra brings the OTLP protobuf definitions)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SERVER_PYTHON, Server
from tests.run_support import function_tool, make_sdk, wait_for_run

RUNS_ROUTE = "/v1/threads/{thread_id}/runs"
SERVER_KIND, CLIENT_KIND = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2  # Status.StatusCode
RELAYED = {
    "id": "chatcmpl-relayed",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "relayed"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
# A sampled W3C trace context, as a client that traces would send it.
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP endpoint that keeps the body of every export request; and an OpenAI-compatible
    upstream at /v1/chat/completions, which answers every request with ``RELAYED`` and keeps its
    headers."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.upstream_headers: list[dict[str, str]] = []
        received, upstream_headers = self.received, self.upstream_headers

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/chat/completions":
                    upstream_headers.append({key.lower(): value for key, value in self.headers.items()})
                    answer, kind = json.dumps(RELAYED).encode(), "application/json"
                else:
                    received.append((self.path, body))
                    answer, kind = b"", "application/x-protobuf"  # an empty ExportTraceServiceResponse
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self, folder: Path) -> list[dict[str, Any]]:
        """Every span received, decoded: name, kind, ids (hex), attributes, status, events, resource."""
        paths = []
        for index, (path, body) in enumerate(self.received):
            assert path == "/v1/traces"
            paths.append(folder / f"export{index}.bin")
            paths[-1].write_bytes(body)
        decoded = subprocess.run(
            [SERVER_PYTHON, "-c", _DECODE, *map(str, paths)], capture_output=True, text=True, timeout=60
        )
        assert decoded.returncode == 0, decoded.stderr
        spans: list[dict[str, Any]] = json.loads(decoded.stdout)
        return spans


_DECODE = """
import json, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    return None if kind is None else getattr(any_value, kind)

def attributes(pairs):
    return {pair.key: value(pair.value) for pair in pairs}

spans = []
for path in sys.argv[1:]:
    request = ExportTraceServiceRequest()
    with open(path, "rb") as body:
        request.ParseFromString(body.read())
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "name": span.name,
                    "kind": span.kind,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "attributes": attributes(span.attributes),
                    "status": span.status.code,
                    "events": [event.name for event in span.events],
                    "links": [[link.trace_id.hex(), link.span_id.hex()] for link in span.links],
                    "scope": scope_spans.scope.name,
                    "resource": resource,
                })
print(json.dumps(spans))
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def _one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [span for span in spans if all(span.get(key) == value for key, value in match.items())]
    assert len(found) == 1, (match, [(span["name"], span["attributes"]) for span in spans])
    return found[0]


def _children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        span
        for span in spans
        if span["parent_span_id"] == parent["span_id"] and span["trace_id"] == parent["trace_id"]
    ]


def _descendants(spans: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    found, parents = [], [root]
    while parents:
        children = _children(spans, parents.pop())
        found += children
        parents += children
    return found


def _run_span(spans: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    [found] = [span for span in spans if span["attributes"].get("assistd.run_id") == run_id]
    assert found["name"] == "assistd.run"
    return found


@pytest.mark.backend("sqlite")
def test_requests_runs_model_calls_and_tools_are_traced(
    receiver: Receiver, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # The model "relayed" is the receiver's upstream model; every other name is the scripted model's.
    models = tmp_path / "models.toml"
    models.write_text(
        f'[backends.relay]\ntype = "openai"\nbase_url = "{receiver.url}/v1"\nmax_retries = 0\n\n'
        '[[models]]\nname = "relayed"\nbackend = "relay"\nmodel = "upstream-model"\n'
    )
    server = start_server(
        ASSISTD_CONFIG=str(models),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        # Nothing is exported until the server stops: what arrives was flushed at its shutdown.
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "/search moons"}])
        run = client.beta.threads.runs.create(
            thread.id,
            assistant_id=assistant.id,
            extra_headers={"traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"},
        )
        run = wait_for_run(client, thread.id, run.id)
        assert run.status == "completed"
        assert run.usage is not None
        steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))

        failing = client.beta.threads.create(
            messages=[{"role": "user", "content": "/fail rate_limit_exceeded"}]
        )
        failed = client.beta.threads.runs.create(failing.id, assistant_id=assistant.id)
        failed = wait_for_run(client, failing.id, failed.id)
        assert failed.status == "failed"
        assert failed.last_error is not None

        chat = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert chat.usage is not None
        relayed = client.chat.completions.create(
            model="relayed", messages=[{"role": "user", "content": "pass it on"}]
        )
        assert relayed.choices[0].message.content == "relayed"

        calling = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("get_weather")])
        asking = client.beta.threads.create(
            messages=[{"role": "user", "content": '/call get_weather {"city": "Paris"}'}]
        )
        started = client.beta.threads.runs.create(asking.id, assistant_id=calling.id)
        paused = wait_for_run(client, asking.id, started.id, lambda run: run.status == "requires_action")
        assert paused.status == "requires_action"
        assert paused.required_action is not None
        [call] = paused.required_action.submit_tool_outputs.tool_calls
        client.beta.threads.runs.submit_tool_outputs(
            paused.id, thread_id=asking.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
        )
        assert wait_for_run(client, asking.id, paused.id).status == "completed"
    assert receiver.received == []  # batched until the end
    server.stop()
    spans = receiver.spans(tmp_path)

    assert {span["resource"]["service.name"] for span in spans} == {"assistd"}
    # Named by route template: no span's name carries an id.
    assert not any(thread.id in span["name"] or run.id in span["name"] for span in spans)

    create = _one(spans, name=f"POST {RUNS_ROUTE}", trace_id=CLIENT_TRACE_ID)
    assert create["kind"] == SERVER_KIND
    assert create["attributes"]["http.route"] == RUNS_ROUTE
    assert create["attributes"]["url.path"] == f"/v1/threads/{thread.id}/runs"
    assert create["attributes"]["http.response.status_code"] == 200
    # The client's trace context was honoured: the request's span is a child of the client's.
    assert create["parent_span_id"] == CLIENT_SPAN_ID

    executed = _run_span(spans, run.id)
    assert executed["attributes"] == {
        "assistd.run_id": run.id,
        "assistd.project_id": executed["attributes"]["assistd.project_id"],
        "assistd.thread_id": thread.id,
        "assistd.assistant_id": assistant.id,
        "assistd.model": "gpt-4o",
        "assistd.run.status": "completed",
    }
    assert executed["attributes"]["assistd.project_id"].startswith("proj_")
    assert executed["parent_span_id"] == ""  # a trace of its own: a worker, maybe elsewhere, executes it
    # ... linked to the span of the request that created the run (FastAPI's span of its endpoint).
    [endpoint] = [span for span in _children(spans, create) if span["name"] == "fastapi.endpoint"]
    assert executed["links"] == [[endpoint["trace_id"], endpoint["span_id"]]]
    assert executed["status"] != STATUS_ERROR

    # A run given its tool outputs is executed again: each execution links to the request that queued
    # it, the run's creation and then the submission of the outputs.
    executions = [span for span in spans if span["attributes"].get("assistd.run_id") == paused.id]
    queued_by = [
        f"/v1/threads/{asking.id}/runs",
        f"/v1/threads/{asking.id}/runs/{paused.id}/submit_tool_outputs",
    ]
    endpoints = []
    for path in queued_by:
        [request] = [span for span in spans if span["attributes"].get("url.path") == path]
        endpoints += [span for span in _children(spans, request) if span["name"] == "fastapi.endpoint"]
    assert sorted(execution["links"] for execution in executions) == sorted(
        [[endpoint["trace_id"], endpoint["span_id"]]] for endpoint in endpoints
    )
    assert len(executions) == 2

    # Under the run: the model's call of file_search, the search, then the model's answer.
    children = _children(spans, executed)
    assert [span["name"] for span in children] == [
        "chat scripted",
        "execute_tool file_search",
        "chat scripted",
    ]
    first_call, search, answer = children
    assert first_call["kind"] == answer["kind"] == CLIENT_KIND
    assert first_call["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert answer["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert answer["attributes"]["gen_ai.operation.name"] == "chat"
    # The model the name was routed to (ASSISTD_DEFAULT_MODEL=scripted), on its backend.
    assert answer["attributes"]["gen_ai.request.model"] == "scripted"
    assert answer["attributes"]["assistd.backend"] == "scripted"
    assert "first chunk" in answer["events"]
    used = [span["attributes"] for span in (first_call, answer)]
    assert sum(usage["gen_ai.usage.input_tokens"] for usage in used) == run.usage.prompt_tokens
    assert sum(usage["gen_ai.usage.output_tokens"] for usage in used) == run.usage.completion_tokens

    tool_step = next(step for step in steps if step.type == "tool_calls")
    assert tool_step.step_details.type == "tool_calls"
    [call] = tool_step.step_details.tool_calls
    assert search["attributes"] == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "file_search",
        "gen_ai.tool.call.id": call.id,
        "assistd.file_search.results": 0,  # the assistant has no vector store
    }

    # A failed model call: its span and the run's say why, in the words of the run's last_error.
    ended = _run_span(spans, failed.id)
    assert ended["attributes"]["assistd.thread_id"] == failing.id
    assert ended["attributes"]["assistd.run.status"] == "failed"
    assert ended["attributes"]["error.type"] == failed.last_error.code == "rate_limit_exceeded"
    assert ended["status"] == STATUS_ERROR
    [failed_call] = _children(spans, ended)
    assert failed_call["attributes"]["error.type"] == "rate_limit_exceeded"
    assert failed_call["status"] == STATUS_ERROR
    assert "exception" in failed_call["events"]

    # Chat Completions: each model call is within its request's span (under FastAPI's span of the
    # endpoint), named by the model id its backend knows.
    calls = {}
    for completion in [span for span in spans if span["name"] == "POST /v1/chat/completions"]:
        [call] = [span for span in _descendants(spans, completion) if span["name"].startswith("chat ")]
        calls[call["name"]] = call["attributes"]
    assert set(calls) == {"chat scripted", "chat upstream-model"}
    assert calls["chat scripted"]["gen_ai.usage.output_tokens"] == chat.usage.completion_tokens
    assert calls["chat scripted"]["gen_ai.usage.input_tokens"] == chat.usage.prompt_tokens
    assert calls["chat upstream-model"]["assistd.backend"] == "relay"
    assert calls["chat upstream-model"]["gen_ai.usage.output_tokens"] == RELAYED["usage"]["completion_tokens"]

    # The upstream's HTTP request is a span of its own, inside the model call's, and the upstream was
    # sent the trace context, so that its own spans would join the trace.
    [request] = _children(spans, _one(spans, name="chat upstream-model"))
    assert request["kind"] == CLIENT_KIND
    assert request["scope"] == "opentelemetry.instrumentation.aiohttp_client"
    [headers] = receiver.upstream_headers
    version, trace_id, parent_id, _flags = headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", request["trace_id"], request["span_id"])


def _serves_runs(server: Server) -> None:
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "untraced"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert wait_for_run(client, thread.id, run.id).status == "completed"


@pytest.mark.backend("sqlite")
def test_tracing_turned_off_exports_nothing(receiver: Receiver, start_server: Callable[..., Server]) -> None:
    server = start_server(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_TRACES_EXPORTER="none")
    _serves_runs(server)
    server.stop()
    assert receiver.received == []
    assert "tracing" not in server.log()


@pytest.mark.backend("sqlite")
def test_tracing_configured_without_the_sdk_warns_and_serves(
    receiver: Receiver, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # The server's interpreter finds an `opentelemetry.sdk` that cannot be imported, as where the otel
    # extra is not installed (the API alone comes with FastAPI).
    missing = tmp_path / "no-sdk" / "opentelemetry" / "sdk"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ModuleNotFoundError('opentelemetry.sdk is not installed')\n")
    path = os.pathsep.join(filter(None, [str(missing.parent.parent), os.environ.get("PYTHONPATH")]))
    server = start_server(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/v1/traces", PYTHONPATH=path)
    _serves_runs(server)
    server.stop()
    assert receiver.received == []
    warnings = [line for line in server.log().splitlines() if "WARNING assistd.tracing" in line]
    assert len(warnings) == 1, server.log()
    assert "running WITHOUT tracing" in warnings[0]
    assert "pip install 'assistd[otel]'" in warnings[0]

"""Streaming runs: event order per the reference (§4), the SDK's stream helpers, raw SSE, disconnects."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.beta.threads.runs import ToolCall

from tests.harness import Server, create_pg_database, drop_pg_database, postgres_enabled
from tests.openapi import assert_schema
from tests.run_support import (
    TEXT_ANSWER,
    RecordingHandler,
    collapse,
    function_tool,
    make_sdk,
    only_assistant_reply,
    raw_stream,
    read_sse,
    text_of,
    time_limit,
    wait_for_run,
)


@pytest.fixture
def sclient(client: openai.OpenAI) -> openai.OpenAI:
    """The SDK client with a read timeout: a stream that stalls fails the test instead of hanging it."""
    return client.with_options(timeout=10)


TOOL_CALL = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.delta",
    "thread.run.requires_action",
]
AFTER_OUTPUTS = [
    "thread.run.step.completed",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]


class ToolRecordingHandler(RecordingHandler):
    def __init__(self) -> None:
        super().__init__()
        self.tool_calls_done: list[ToolCall] = []

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.tool_calls_done.append(tool_call)


def new_thread(client: openai.OpenAI, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def check_event_payloads(events: list[Any]) -> None:
    """Every object event carries the object in the state its name says; every delta follows the
    created event of its object."""
    created: set[str] = set()
    for event in events:
        name, data = event.event, event.data
        if name in ("thread.message.created", "thread.run.step.created"):
            created.add(data.id)
        if name.endswith(".delta"):
            assert data.id in created, f"{name} for {data.id} before its created event"
            continue
        if name == "thread.created":
            assert data.object == "thread"
        elif name.startswith("thread.run.step."):
            assert data.object == "thread.run.step"
            expected = (
                "in_progress" if name.endswith((".created", ".in_progress")) else name.rsplit(".", 1)[1]
            )
            assert data.status == expected, (name, data.status)
        elif name.startswith("thread.run."):
            assert data.object == "thread.run"
            expected = "queued" if name == "thread.run.created" else name.rsplit(".", 1)[1]
            assert data.status == expected, (name, data.status)
        elif name.startswith("thread.message."):
            assert data.object == "thread.message"
            expected = (
                "in_progress" if name.endswith((".created", ".in_progress")) else name.rsplit(".", 1)[1]
            )
            assert data.status == expected, (name, data.status)
            if name == "thread.message.created":
                assert data.content == []


def test_stream_text_answer_with_an_event_handler(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread_id = new_thread(client, "Stream me, please: 1, 2, 3.")
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=handler
    ) as s:
        s.until_done()
        final_run = s.get_final_run()
        final_messages = s.get_final_messages()
        final_steps = s.get_final_run_steps()

    assert collapse(handler.names) == TEXT_ANSWER
    assert handler.names.count("thread.message.delta") > 3  # one per token
    check_event_payloads(handler.events)
    assert handler.ended

    assert final_run.status == "completed"
    assert final_run.thread_id == thread_id
    assert final_run.usage is not None
    assert (
        final_run.usage.total_tokens == final_run.usage.prompt_tokens + final_run.usage.completion_tokens > 0
    )
    assert final_run.expires_at is None

    stored = only_assistant_reply(client, thread_id, final_run.id)
    expected = "You said: Stream me, please: 1, 2, 3."
    assert text_of(stored) == expected
    assert "".join(handler.deltas) == expected
    assert handler.texts_done == [expected]
    assert [m.id for m in final_messages] == [stored.id]
    assert text_of(final_messages[0]) == expected
    assert final_messages[0].status == "completed"
    # The SDK's step snapshots come from step.created and step.delta events only (so in_progress).
    assert [step.type for step in final_steps] == ["message_creation"]
    assert final_steps[0].step_details.message_creation.message_id == stored.id  # type: ignore[union-attr]
    # What the stream said last is what the server stored.
    assert client.beta.threads.runs.retrieve(final_run.id, thread_id=thread_id) == final_run


def test_stream_events_iterated_without_a_handler(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "iterate")
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant.id) as stream:
        # Copies: the SDK goes on building its message snapshot in the created event's object.
        events = [event.model_copy(deep=True) for event in stream]
        text = "".join(
            part.text.value or ""
            for event in events
            if event.event == "thread.message.delta"
            for part in event.data.delta.content or []
            if part.type == "text" and part.text is not None
        )
    assert collapse([event.event for event in events]) == TEXT_ANSWER
    check_event_payloads(events)
    assert text == "You said: iterate"


def test_create_and_run_stream_starts_with_thread_created(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o")
    handler = RecordingHandler()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "new thread, streamed"}], "metadata": {"t": "1"}},
        event_handler=handler,
    ) as stream:
        stream.until_done()
        final_run = stream.get_final_run()

    assert collapse(handler.names) == ["thread.created", *TEXT_ANSWER]
    check_event_payloads(handler.events)
    thread = handler.events[0].data
    assert thread.id == final_run.thread_id
    assert thread.metadata == {"t": "1"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"t": "1"}
    assert final_run.status == "completed"
    assert "".join(handler.deltas) == "You said: new thread, streamed"
    messages = list(client.beta.threads.messages.list(thread.id))
    assert [(m.role, text_of(m)) for m in messages] == [
        ("assistant", "You said: new thread, streamed"),
        ("user", "new thread, streamed"),
    ]


def test_create_and_run_poll(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    with time_limit(10, "create_and_run_poll"):
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "polled"}]}
        )
    assert run.status == "completed"
    assert text_of(only_assistant_reply(client, run.thread_id, run.id)) == "You said: polled"


def test_streaming_function_round_trip(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("get_weather")])
    thread_id = new_thread(client, '/call get_weather {"city": "Paris", "unit": "celsius"}')

    first = ToolRecordingHandler()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=first
    ) as s:
        s.until_done()
        paused = s.get_final_run()
    assert collapse(first.names, "thread.run.step.delta") == TOOL_CALL
    check_event_payloads(first.events)
    assert paused.status == "requires_action"
    assert paused.required_action is not None
    (call,) = paused.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == (
        "get_weather",
        '{"city":"Paris","unit":"celsius"}',
    )
    # The SDK rebuilt the call from the step deltas: id and name first, then argument fragments.
    assert len(first.tool_calls_done) == 1
    rebuilt = first.tool_calls_done[0]
    assert rebuilt.id == call.id
    assert rebuilt.function.name == "get_weather"  # type: ignore[union-attr]
    assert rebuilt.function.arguments == call.function.arguments  # type: ignore[union-attr]
    step_delta = next(e for e in first.events if e.event == "thread.run.step.delta")
    first_fragment = step_delta.data.delta.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert (first_fragment.id, first_fragment.function.name) == (call.id, "get_weather")  # type: ignore[union-attr]

    second = ToolRecordingHandler()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread_id,
        run_id=paused.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "21C"}],
        event_handler=second,
    ) as s:
        s.until_done()
        done = s.get_final_run()
        steps = s.get_final_run_steps()
    assert collapse(second.names) == AFTER_OUTPUTS
    check_event_payloads(second.events)
    tool_step = second.events[0].data
    assert tool_step.type == "tool_calls"
    assert tool_step.step_details.tool_calls[0].function.output == "21C"
    assert done.status == "completed"
    assert done.id == paused.id
    stored = only_assistant_reply(client, thread_id, done.id)
    assert text_of(stored) == "get_weather returned 21C"
    assert "".join(second.deltas) == text_of(stored)
    # This stream created one step, the answer's (the tool step was created by the first stream).
    assert [step.type for step in steps] == ["message_creation"]
    assert steps[0].step_details.message_creation.message_id == stored.id  # type: ignore[union-attr]


def test_stream_text_then_tool_call(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("f")])
    thread_id = new_thread(client, "Checking\n/call f {}")
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=handler
    ) as s:
        s.until_done()
        messages = s.get_final_messages()
    names = collapse(collapse(handler.names), "thread.run.step.delta")
    assert names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    check_event_payloads(handler.events)
    assert "".join(handler.deltas) == "Checking"
    assert [text_of(m) for m in messages] == ["Checking"]


def test_stream_incomplete_answer(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o")
    words = [f"w{i}" for i in range(300)]
    thread_id = new_thread(client, " ".join(words))
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, max_completion_tokens=256, event_handler=handler
    ) as s:
        s.until_done()
        final_run = s.get_final_run()
    assert collapse(handler.names)[-4:] == [
        "thread.message.delta",
        "thread.message.incomplete",
        "thread.run.step.completed",
        "thread.run.incomplete",
    ]
    check_event_payloads(handler.events)
    assert handler.names.count("thread.message.delta") == 256
    assert final_run.incomplete_details is not None
    assert final_run.incomplete_details.reason == "max_completion_tokens"
    assert "".join(handler.deltas) == "You said: " + " ".join(words[:253])


def test_model_failure_while_streaming_ends_with_run_failed(sclient: openai.OpenAI) -> None:
    client = sclient
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/fail rate_limit_exceeded slow down")
    handler = RecordingHandler()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=handler
    ) as s:
        s.until_done()
        final_run = s.get_final_run()
    assert handler.names[-1] == "thread.run.failed"
    assert handler.names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert "thread.run.completed" not in handler.names
    check_event_payloads(handler.events)
    assert final_run.status == "failed"
    assert final_run.last_error is not None
    assert (final_run.last_error.code, final_run.last_error.message) == ("rate_limit_exceeded", "slow down")
    assert client.beta.threads.runs.retrieve(final_run.id, thread_id=thread_id).status == "failed"


def test_cancel_while_streaming(sclient: openai.OpenAI) -> None:
    client = sclient

    class CancelOnStart(RecordingHandler):
        def on_event(self, event: Any) -> None:
            super().on_event(event)
            if event.event == "thread.run.in_progress":
                client.beta.threads.runs.cancel(event.data.id, thread_id=event.data.thread_id)

    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 5\nnot said")
    handler = CancelOnStart()
    started = time.monotonic()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant.id, event_handler=handler
    ) as s:
        s.until_done()
        final_run = s.get_final_run()
    assert time.monotonic() - started < 4
    assert handler.names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.cancelling",
        "thread.run.cancelled",
    ]
    check_event_payloads(handler.events)
    assert final_run.status == "cancelled"


# -- raw SSE -----------------------------------------------------------------------------------------


def test_raw_stream_is_sse_ending_with_done(client: openai.OpenAI, http: httpx.Client) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "raw")
    with raw_stream(
        http, f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant.id, "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers.get("cache-control") == "no-cache"
        body = r.read().decode()
    events = list(read_sse(iter(body.split("\n"))))
    assert events[-1].event == "done"
    assert events[-1].data == "[DONE]"
    assert body.endswith("event: done\ndata: [DONE]\n\n")
    assert collapse([e.event for e in events[:-1]]) == TEXT_ANSWER
    for event in events[:-1]:
        assert "\n" not in event.data
        payload = event.json()
        if event.event.startswith("thread.run.step."):
            if event.event == "thread.run.step.delta":
                assert payload["object"] == "thread.run.step.delta"
            else:
                assert_schema("RunStepObject", payload)
        elif event.event.startswith("thread.run."):
            assert_schema("RunObject", payload)
        elif event.event == "thread.message.delta":
            assert payload["object"] == "thread.message.delta"
            assert payload["delta"]["content"][0]["index"] == 0
            assert payload["delta"]["content"][0]["type"] == "text"
        else:
            assert payload["object"] == "thread.message"


def test_raw_create_and_run_and_tool_outputs_streams(client: openai.OpenAI, http: httpx.Client) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("f")])
    body = {
        "assistant_id": assistant.id,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "/call f {}"}]},
    }
    with raw_stream(http, "/v1/threads/runs", body) as r:
        events = list(read_sse(r.iter_lines()))
    assert [e.event for e in events][-2:] == ["thread.run.requires_action", "done"]
    assert events[0].event == "thread.created"
    run = events[-2].json()
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    outputs = {"tool_outputs": [{"tool_call_id": call["id"], "output": "fine"}], "stream": True}
    path = f"/v1/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs"
    with raw_stream(http, path, outputs) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(read_sse(r.iter_lines()))
    assert collapse([e.event for e in events]) == [*AFTER_OUTPUTS, "done"]
    assert events[-1].data == "[DONE]"


def test_client_disconnect_does_not_stop_the_run(client: openai.OpenAI, http: httpx.Client) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 1\nfinish without me")
    seen: list[str] = []
    with raw_stream(
        http, f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant.id, "stream": True}
    ) as r:
        for event in read_sse(r.iter_lines()):
            seen.append(event.event)
            if event.event == "thread.run.created":
                run_id = event.json()["id"]
            if event.event == "thread.run.in_progress":
                break  # and close the connection while the model is still "thinking"
    assert seen == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]

    final = wait_for_run(client, thread_id, run_id, timeout=10)
    assert final.status == "completed"
    assert text_of(only_assistant_reply(client, thread_id, run_id)) == "You said: finish without me"
    reply = only_assistant_reply(client, thread_id, run_id)
    assert reply.status == "completed"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_quiet_stream_sends_keepalive_comments_the_sdk_skips(
    start_server: Callable[..., Server], database: str
) -> None:
    """While the model is silent, comment lines keep proxies from closing the stream; the SDK ignores
    them and still sees every event, also where events carry ids (PostgreSQL)."""
    settings = {"ASSISTD_STREAM_KEEPALIVE_SECONDS": "0.2"}
    if database == "sqlite":
        _quiet_stream(start_server(**settings))
        return
    if not postgres_enabled():
        pytest.skip("ASSISTD_TEST_PG=off")
    url = create_pg_database()
    server = start_server(**settings, ASSISTD_DATABASE_URL=url)
    try:
        _quiet_stream(server)
    finally:
        server.stop()
        drop_pg_database(url)


def _quiet_stream(server: Server) -> None:
    client = make_sdk(server)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 1\nquiet")
    with (
        httpx.Client(base_url=server.url) as http,
        raw_stream(
            http, f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant.id, "stream": True}
        ) as r,
    ):
        body = r.read().decode()
    # A second of silence at 0.2 s; each comment a line of its own, not an (empty) event.
    assert body.count(": keep-alive\n") >= 3
    assert ": keep-alive\n\n" not in body
    events = list(read_sse(iter(body.split("\n"))))
    assert collapse([e.event for e in events[:-1]]) == TEXT_ANSWER

    sdk_thread = new_thread(client, "/sleep 1\nquiet")
    with client.beta.threads.runs.stream(thread_id=sdk_thread, assistant_id=assistant.id) as stream:
        text = "".join(stream.text_deltas)
    assert text == "You said: quiet"


def test_a_stream_can_be_read_again_where_events_are_stored(
    client: openai.OpenAI, http: httpx.Client, backend: str
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "once more"}])
    body = {"assistant_id": assistant.id, "stream": True}
    with raw_stream(http, f"/v1/threads/{thread.id}/runs", body) as response:
        first = list(read_sse(response.iter_lines()))
    run_id = first[0].json()["id"]
    path = f"/v1/threads/{thread.id}/runs/{run_id}/stream"
    if backend == "sqlite":
        # The embedded mode hands events over in memory and keeps none: nothing to resume from.
        assert all(event.id is None for event in first)
        refused = http.get(path, params={"after": 0})
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"
        return
    assert [event.id for event in first[:-1]] == [str(n) for n in range(1, len(first))]
    with http.stream("GET", path, params={"after": 3}, timeout=10) as response:
        assert response.status_code == 200
        again = list(read_sse(response.iter_lines()))
    assert [(e.id, e.event, e.data) for e in again] == [(e.id, e.event, e.data) for e in first[3:]]
    assert again[0].event == "thread.run.step.created"

"""Runs through the official SDK: the tutorial flow, every run status, the thread lock, run options."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import openai
import pytest

from tests.harness import Server
from tests.openapi import assert_schema
from tests.run_support import (
    function_tool,
    make_sdk,
    only_assistant_reply,
    text_of,
    wait_for_run,
    wait_for_status,
)

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def new_thread(client: openai.OpenAI, text: str) -> str:
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content=text)
    return thread.id


def api_error_body(error: openai.APIStatusError) -> dict[str, object]:
    assert isinstance(error.body, dict), error.body
    return error.body


# -- the tutorial ------------------------------------------------------------------------------------


def test_math_tutor_tutorial_flow(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Write and run code to answer math questions.",
        tools=[{"type": "code_interpreter"}],
        model="gpt-4o",
    )
    thread = client.beta.threads.create()
    question = "I need to solve the equation `3x + 11 = 14`. Can you help me?"
    message = client.beta.threads.messages.create(thread_id=thread.id, role="user", content=question)
    run = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=assistant.id,
        instructions="Please address the user as Jane Doe. The user has a premium account.",
    )
    assert run.status == "queued"
    assert run.thread_id == thread.id
    assert run.assistant_id == assistant.id

    deadline = time.monotonic() + 10
    poll_hints: list[str | None] = []
    while run.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"run still {run.status} after 10 s"
        time.sleep(0.5)
        raw = client.beta.threads.runs.with_raw_response.retrieve(thread_id=thread.id, run_id=run.id)
        poll_hints.append(raw.headers.get("openai-poll-after-ms"))
        run = raw.parse()
    assert run.status == "completed", run.last_error
    assert poll_hints, "never polled"
    assert all(hint is not None and hint.isdigit() for hint in poll_hints), poll_hints

    assert run.model == "gpt-4o"
    assert run.instructions == "Please address the user as Jane Doe. The user has a premium account."
    assert [tool.type for tool in run.tools] == ["code_interpreter"]
    assert run.last_error is None
    assert run.required_action is None
    assert run.incomplete_details is None
    assert run.started_at is not None
    assert run.completed_at is not None
    assert run.created_at <= run.started_at <= run.completed_at
    assert run.failed_at is None
    assert run.cancelled_at is None
    assert run.expires_at is None
    assert run.usage is not None
    assert run.usage.prompt_tokens > 0
    assert run.usage.completion_tokens > 0
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens

    newest_first = list(client.beta.threads.messages.list(thread_id=thread.id))
    assert [m.role for m in newest_first] == ["assistant", "user"]
    reply, asked = newest_first
    assert asked.id == message.id
    assert text_of(reply) == f"You said: {question}"
    assert reply.status == "completed"
    assert reply.run_id == run.id
    assert reply.assistant_id == assistant.id
    assert reply.thread_id == thread.id
    assert reply.completed_at is not None
    assert asked.run_id is None
    assert asked.assistant_id is None

    after_question = list(
        client.beta.threads.messages.list(thread_id=thread.id, order="asc", after=message.id)
    )
    assert [m.id for m in after_question] == [reply.id]


def test_run_and_steps_match_the_spec(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread_id = new_thread(client, "Hello there")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    queued_body = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread_id
    ).http_response
    assert_schema("RunObject", queued_body.json())
    run = wait_for_run(client, thread_id, run.id)
    assert run.status == "completed"

    body = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread_id
    ).http_response.json()
    assert_schema("RunObject", body)
    assert body["object"] == "thread.run"
    assert body["id"].startswith("run_")
    assert body["expires_at"] is None
    assert body["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["response_format"] == "auto"
    assert body["temperature"] == 1.0
    assert body["top_p"] == 1.0
    assert body["max_prompt_tokens"] is None
    assert body["max_completion_tokens"] is None

    steps = client.beta.threads.runs.steps.with_raw_response.list(
        run.id, thread_id=thread_id
    ).http_response.json()
    assert steps["object"] == "list"
    assert len(steps["data"]) == 1
    for step in steps["data"]:
        assert_schema("RunStepObject", step)
    step = steps["data"][0]
    reply = only_assistant_reply(client, thread_id, run.id)
    assert step["id"].startswith("step_")
    assert step["object"] == "thread.run.step"
    assert step["type"] == "message_creation"
    assert step["status"] == "completed"
    assert step["step_details"] == {"type": "message_creation", "message_creation": {"message_id": reply.id}}
    assert (step["run_id"], step["thread_id"], step["assistant_id"]) == (run.id, thread_id, assistant.id)
    assert step["completed_at"] is not None
    assert step["usage"] == {
        "prompt_tokens": run.usage.prompt_tokens,  # type: ignore[union-attr]
        "completion_tokens": run.usage.completion_tokens,  # type: ignore[union-attr]
        "total_tokens": run.usage.total_tokens,  # type: ignore[union-attr]
    }
    assert text_of(reply) == "You said: Hello there"


@pytest.mark.anyio
async def test_three_threads_run_concurrently(aclient: openai.AsyncOpenAI) -> None:
    assistant = await aclient.beta.assistants.create(model="gpt-4o-mini", name="concurrent")
    threads = await asyncio.gather(
        *(
            aclient.beta.threads.create(messages=[{"role": "user", "content": f"Question number {i}"}])
            for i in range(3)
        )
    )
    runs = await asyncio.gather(
        *(aclient.beta.threads.runs.create(thread.id, assistant_id=assistant.id) for thread in threads)
    )
    assert [run.thread_id for run in runs] == [thread.id for thread in threads]

    async def finish(thread_id: str, run_id: str) -> openai.types.beta.threads.Run:
        deadline = time.monotonic() + 10
        while True:
            run = await aclient.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            if run.status not in ("queued", "in_progress"):
                return run
            assert time.monotonic() < deadline, f"{run_id} still {run.status}"
            await asyncio.sleep(0.1)

    finished = await asyncio.gather(*(finish(run.thread_id, run.id) for run in runs))
    assert [run.status for run in finished] == ["completed"] * 3
    for i, (thread, run) in enumerate(zip(threads, finished, strict=True)):
        messages = [m async for m in aclient.beta.threads.messages.list(thread.id)]
        assert [m.role for m in messages] == ["assistant", "user"]
        assert text_of(messages[0]) == f"You said: Question number {i}"
        assert messages[0].run_id == run.id


# -- every status ------------------------------------------------------------------------------------


def test_queued_then_in_progress_then_completed(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 1\nSlow answer")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert run.status == "queued"
    assert run.started_at is None
    assert run.expires_at is not None
    assert run.expires_at > run.created_at
    assert run.usage is None

    in_progress = wait_for_status(client, thread_id, run.id, "in_progress", timeout=3)
    assert in_progress.started_at is not None
    assert in_progress.completed_at is None
    assert in_progress.expires_at is not None
    assert in_progress.usage is None

    done = wait_for_run(client, thread_id, run.id, timeout=5)
    assert done.status == "completed"
    assert done.started_at == in_progress.started_at
    assert text_of(only_assistant_reply(client, thread_id, run.id)) == "You said: Slow answer"


@pytest.mark.backend("sqlite")
def test_run_waits_queued_while_the_worker_is_full(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_WORKER_CONCURRENCY="1", ASSISTD_WORKER_POLL_SECONDS="0.2")
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="m")
        busy_thread = new_thread(client, "/sleep 5")
        busy = client.beta.threads.runs.create(busy_thread, assistant_id=assistant.id)
        wait_for_status(client, busy_thread, busy.id, "in_progress", timeout=3)

        waiting_thread = new_thread(client, "my turn")
        waiting = client.beta.threads.runs.create(waiting_thread, assistant_id=assistant.id)
        time.sleep(0.5)
        seen = client.beta.threads.runs.retrieve(waiting.id, thread_id=waiting_thread)
        assert seen.status == "queued"
        assert seen.started_at is None

        assert client.beta.threads.runs.cancel(busy.id, thread_id=busy_thread).status == "cancelling"
        assert wait_for_run(client, busy_thread, busy.id, timeout=3).status == "cancelled"
        done = wait_for_run(client, waiting_thread, waiting.id, timeout=5)
        assert done.status == "completed"
        assert text_of(only_assistant_reply(client, waiting_thread, waiting.id)) == "You said: my turn"


@pytest.mark.backend("sqlite")
def test_cancel_of_a_queued_run_does_not_wait_for_a_free_worker(start_server: Callable[..., Server]) -> None:
    # A queued run nobody executes has nothing to stop: cancelling it must not wait until some other,
    # unrelated run frees a worker slot (that can take as long as a model call).
    server = start_server(ASSISTD_WORKER_CONCURRENCY="1", ASSISTD_WORKER_POLL_SECONDS="0.2")
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="m")
        busy_thread = new_thread(client, "/sleep 4")
        busy = client.beta.threads.runs.create(busy_thread, assistant_id=assistant.id)
        wait_for_status(client, busy_thread, busy.id, "in_progress", timeout=3)

        queued_thread = new_thread(client, "never run")
        queued = client.beta.threads.runs.create(queued_thread, assistant_id=assistant.id)
        assert client.beta.threads.runs.cancel(queued.id, thread_id=queued_thread).status == "cancelling"
        final = wait_for_run(client, queued_thread, queued.id, timeout=6)
        assert final.status == "cancelled"
        busy_now = client.beta.threads.runs.retrieve(busy.id, thread_id=busy_thread)
        assert busy_now.status == "in_progress", "the queued run was cancelled only once the worker was free"
        assert final.started_at is None
        assert [m.role for m in client.beta.threads.messages.list(queued_thread)] == ["user"]
        client.beta.threads.runs.cancel(busy.id, thread_id=busy_thread)  # the server stops at once


def test_requires_action(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("get_weather")])
    thread_id = new_thread(client, '/call get_weather {"city": "Paris"}')
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    run = wait_for_run(client, thread_id, run.id, lambda r: r.status not in ("queued", "in_progress"))
    assert run.status == "requires_action"
    assert run.expires_at is not None
    assert run.completed_at is None
    assert run.required_action is not None
    assert run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert len(calls) == 1
    assert calls[0].id.startswith("call_")
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == '{"city":"Paris"}'

    body = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread_id
    ).http_response.json()
    assert_schema("RunObject", body)
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    assert len(steps) == 1
    step = steps[0]
    assert step.type == "tool_calls"
    assert step.status == "in_progress"
    assert step.step_details.type == "tool_calls"
    (detail,) = step.step_details.tool_calls  # type: ignore[union-attr]
    assert detail.type == "function"
    assert detail.id == calls[0].id
    assert (detail.function.name, detail.function.arguments, detail.function.output) == (  # type: ignore[union-attr]
        "get_weather",
        '{"city":"Paris"}',
        None,
    )
    # No assistant message: the model only called the function.
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]


def test_cancelling_then_cancelled(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 5\nnever said")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    wait_for_status(client, thread_id, run.id, "in_progress", timeout=3)

    cancelled_at = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert cancelling.id == run.id
    assert cancelling.status == "cancelling"
    assert cancelling.cancelled_at is None

    final = wait_for_run(client, thread_id, run.id, timeout=4)
    assert final.status == "cancelled"
    # The model call was stopped, not waited for: /sleep 5 had seconds left.
    assert time.monotonic() - cancelled_at < 3
    assert final.cancelled_at is not None
    assert final.completed_at is None
    assert final.failed_at is None
    assert final.expires_at is None
    assert final.last_error is None
    replies = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert all(m.status == "incomplete" for m in replies), replies
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    assert all(step.status == "cancelled" for step in steps), steps


def test_cancel_while_requires_action_cancels_the_tool_step(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("lookup")])
    thread_id = new_thread(client, "/call lookup {}")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    wait_for_status(client, thread_id, run.id, "requires_action", timeout=5)
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread_id).status == "cancelling"
    final = wait_for_run(client, thread_id, run.id, timeout=5)
    assert final.status == "cancelled"
    assert final.required_action is None
    (step,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    assert step.type == "tool_calls"
    assert step.status == "cancelled"
    assert step.cancelled_at is not None


def test_cancel_of_a_finished_run_is_400(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "done soon")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert info.value.status_code == 400
    body = api_error_body(info.value)
    assert body["type"] == "invalid_request_error"
    assert body["message"] == "Cannot cancel run with status 'completed'."
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "completed"


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        ("/fail", "server_error", "The scripted model failed as asked."),
        ("/fail rate_limit_exceeded too many", "rate_limit_exceeded", "too many"),
        ("/fail invalid_prompt That prompt is not allowed", "invalid_prompt", "That prompt is not allowed"),
    ],
)
def test_failed(client: openai.OpenAI, line: str, code: str, message: str) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, line)
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    final = wait_for_run(client, thread_id, run.id)
    assert final.status == "failed"
    assert final.last_error is not None
    assert (final.last_error.code, final.last_error.message) == (code, message)
    assert final.failed_at is not None
    assert final.completed_at is None
    assert final.expires_at is None
    body = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread_id
    ).http_response.json()
    assert_schema("RunObject", body)
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    for step in steps:
        assert step.status == "failed"
        assert step.failed_at is not None
        assert step.last_error is not None
        assert step.last_error.code in ("server_error", "rate_limit_exceeded")
    # The model said nothing: no completed assistant message.
    replies = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert all(m.status == "incomplete" for m in replies), replies
    # The thread is unlocked: a new run works.
    client.beta.threads.messages.create(thread_id, role="user", content="try again")
    again = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert wait_for_run(client, thread_id, again.id).status == "completed"


def test_incomplete_max_completion_tokens(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    words = [f"word{i}" for i in range(300)]
    thread_id = new_thread(client, " ".join(words))
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, max_completion_tokens=256)
    assert run.max_completion_tokens == 256
    final = wait_for_run(client, thread_id, run.id)
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_completion_tokens"
    assert final.expires_at is None
    assert final.last_error is None
    assert final.usage is not None
    assert final.usage.completion_tokens == 256
    assert final.usage.total_tokens == final.usage.prompt_tokens + 256

    reply = only_assistant_reply(client, thread_id, run.id)
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_tokens"
    assert reply.incomplete_at is not None
    # "You", " said", ":" and then 253 of the words: 256 tokens.
    assert text_of(reply) == "You said: " + " ".join(words[:253])
    body = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread_id
    ).http_response.json()
    assert_schema("RunObject", body)


def test_incomplete_max_prompt_tokens(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, " ".join(["huge"] * 400))
    run = client.beta.threads.runs.create(
        thread_id,
        assistant_id=assistant.id,
        max_prompt_tokens=256,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
    )
    assert run.max_prompt_tokens == 256
    assert run.truncation_strategy is not None
    assert (run.truncation_strategy.type, run.truncation_strategy.last_messages) == ("last_messages", 1)
    final = wait_for_run(client, thread_id, run.id)
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_prompt_tokens"
    assert final.expires_at is None
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]


def test_auto_truncation_drops_old_messages_to_fit(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": " ".join(["old"] * 200)},
            {"role": "user", "content": " ".join(["older"] * 200)},
            {"role": "user", "content": "the newest question"},
        ]
    )
    run = client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, max_prompt_tokens=256, truncation_strategy={"type": "auto"}
    )
    final = wait_for_run(client, thread.id, run.id)
    assert final.status == "completed", (final.status, final.incomplete_details)
    assert final.usage is not None
    assert 0 < final.usage.prompt_tokens <= 256
    assert text_of(only_assistant_reply(client, thread.id, run.id)) == "You said: the newest question"


@pytest.mark.backend("sqlite")
def test_expired_while_waiting_for_tool_outputs(start_server: Callable[..., Server]) -> None:
    server = start_server(
        ASSISTD_RUN_TTL_SECONDS="2", ASSISTD_WORKER_POLL_SECONDS="0.2", ASSISTD_POLL_AFTER_MS="250"
    )
    with make_sdk(server) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("slow_tool")])
        thread_id = new_thread(client, "/call slow_tool {}")
        raw = client.beta.threads.runs.with_raw_response.create(thread_id, assistant_id=assistant.id)
        run = raw.parse()
        # The polling hint follows the setting, on create as on retrieve.
        assert raw.headers.get("openai-poll-after-ms") == "250"
        retrieved = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
        assert retrieved.headers.get("openai-poll-after-ms") == "250"
        assert run.expires_at is not None
        assert run.expires_at - run.created_at == 2
        waiting = wait_for_status(client, thread_id, run.id, "requires_action", timeout=2)
        call_id = waiting.required_action.submit_tool_outputs.tool_calls[0].id  # type: ignore[union-attr]

        final = wait_for_run(client, thread_id, run.id, timeout=6)
        assert final.status == "expired"
        assert final.required_action is None
        assert final.expires_at is None
        (step,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
        assert step.type == "tool_calls"
        assert step.status == "expired"
        assert step.expired_at is not None

        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call_id, "output": "late"}]
            )
        # The thread is free again.
        client.beta.threads.messages.create(thread_id, role="user", content="still there?")
        again = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
        assert wait_for_run(client, thread_id, again.id).status == "completed"

        # A model call that outlives the run's deadline expires the run too.
        slow_thread = new_thread(client, "/sleep 10\ntoo late")
        slow = client.beta.threads.runs.create(slow_thread, assistant_id=assistant.id)
        final = wait_for_run(client, slow_thread, slow.id, timeout=6)
        assert final.status == "expired"
        assert final.expires_at is None
        assert final.completed_at is None
        assert [m.role for m in client.beta.threads.messages.list(slow_thread)] == ["user"]


# -- the thread lock ---------------------------------------------------------------------------------


def test_thread_is_locked_while_a_run_is_active(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "/sleep 5\nlocked")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)

    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.messages.create(thread_id, role="user", content="too early")
    assert info.value.status_code == 400
    assert api_error_body(info.value) == {
        "message": f"Can't add messages to {thread_id} while a run {run.id} is active.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }

    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert info.value.status_code == 400
    assert api_error_body(info.value)["message"] == f"Thread {thread_id} already has an active run {run.id}."

    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.delete(thread_id)
    assert info.value.status_code == 400
    assert run.id in str(api_error_body(info.value)["message"])

    # A refused run leaves nothing behind: not its additional messages, not a stream.
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(
            thread_id, assistant_id=assistant.id, additional_messages=[{"role": "user", "content": "sneaky"}]
        )
    assert info.value.status_code == 400
    refused_stream = client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError) as info, refused_stream as stream:
        stream.until_done()
    assert info.value.status_code == 400
    assert [text_of(m) for m in client.beta.threads.messages.list(thread_id)] == ["/sleep 5\nlocked"]
    assert [r.id for r in client.beta.threads.runs.list(thread_id)] == [run.id]

    assert client.beta.threads.runs.cancel(run.id, thread_id=thread_id).status == "cancelling"
    assert wait_for_run(client, thread_id, run.id, timeout=4).status == "cancelled"

    client.beta.threads.messages.create(thread_id, role="user", content="now it works")
    second = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert wait_for_run(client, thread_id, second.id).status == "completed"
    assert text_of(only_assistant_reply(client, thread_id, second.id)) == "You said: now it works"
    assert client.beta.threads.delete(thread_id).deleted is True


def test_thread_is_locked_during_requires_action(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("f")])
    thread_id = new_thread(client, "/call f {}")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    wait_for_status(client, thread_id, run.id, "requires_action", timeout=5)
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.messages.create(thread_id, role="user", content="x")
    assert api_error_body(info.value)["message"] == (
        f"Can't add messages to {thread_id} while a run {run.id} is active."
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert api_error_body(info.value)["message"] == f"Thread {thread_id} already has an active run {run.id}."
    client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert wait_for_run(client, thread_id, run.id).status == "cancelled"


def test_thread_messages_cannot_be_deleted_while_a_run_is_active(client: openai.OpenAI) -> None:
    # The reference (§1, thread lock (c)): deleting thread messages fails with 400 during a run.
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "/sleep 3\nkeep me"}])
    (message,) = list(client.beta.threads.messages.list(thread.id))
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    try:
        with pytest.raises(openai.BadRequestError) as info:
            client.beta.threads.messages.delete(message.id, thread_id=thread.id)
        assert info.value.status_code == 400
        assert run.id in str(api_error_body(info.value)["message"])
    finally:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        wait_for_run(client, thread.id, run.id)


# -- run options -------------------------------------------------------------------------------------


def test_instructions_override_and_additional_instructions(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Base instructions.")
    thread_id = new_thread(client, "hi")

    run = client.beta.threads.runs.create(
        thread_id, assistant_id=assistant.id, additional_instructions="Be kind."
    )
    assert run.instructions == "Base instructions.\n\nBe kind."
    assert wait_for_run(client, thread_id, run.id).instructions == "Base instructions.\n\nBe kind."

    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, instructions="Replaced.")
    assert run.instructions == "Replaced."
    assert wait_for_run(client, thread_id, run.id).status == "completed"

    run = client.beta.threads.runs.create(
        thread_id, assistant_id=assistant.id, instructions="Replaced.", additional_instructions="And more."
    )
    assert run.instructions == "Replaced.\n\nAnd more."
    assert wait_for_run(client, thread_id, run.id).status == "completed"

    plain = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert plain.instructions == "Base instructions."
    assert wait_for_run(client, thread_id, plain.id).status == "completed"


def test_model_tools_and_sampling_overrides(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("a")], temperature=0.5)
    thread_id = new_thread(client, "which model?")
    run = client.beta.threads.runs.create(
        thread_id,
        assistant_id=assistant.id,
        model="llama3.1:8b",
        tools=[function_tool("b"), function_tool("c")],
        top_p=0.5,
    )
    assert run.model == "llama3.1:8b"
    assert [tool.function.name for tool in run.tools] == ["b", "c"]  # type: ignore[union-attr]
    assert run.temperature == pytest.approx(0.5)
    assert run.top_p == pytest.approx(0.5)
    final = wait_for_run(client, thread_id, run.id)
    assert final.status == "completed"
    assert final.model == "llama3.1:8b"
    assert text_of(only_assistant_reply(client, thread_id, run.id)) == "You said: which model?"
    assert client.beta.assistants.retrieve(assistant.id).model == "gpt-4o"


def test_additional_messages_become_thread_messages(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "first")
    run = client.beta.threads.runs.create(
        thread_id,
        assistant_id=assistant.id,
        additional_messages=[
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": "the follow-up", "metadata": {"k": "v"}},
        ],
    )
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    messages = list(client.beta.threads.messages.list(thread_id, order="asc"))
    assert [(m.role, text_of(m)) for m in messages] == [
        ("user", "first"),
        ("assistant", "an earlier answer"),
        ("user", "the follow-up"),
        ("assistant", "You said: the follow-up"),
    ]
    assert messages[2].metadata == {"k": "v"}
    assert messages[1].run_id is None
    assert messages[3].run_id == run.id


def test_response_format_json_object(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "answer in JSON")
    run = client.beta.threads.runs.create(
        thread_id, assistant_id=assistant.id, response_format={"type": "json_object"}
    )
    assert run.response_format is not None
    assert run.response_format.type == "json_object"  # type: ignore[union-attr]
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    reply = text_of(only_assistant_reply(client, thread_id, run.id))
    assert json.loads(reply) == {"reply": "You said: answer in JSON"}


def test_metadata_and_update(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "meta")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, metadata={"user": "42"})
    assert run.metadata == {"user": "42"}
    wait_for_run(client, thread_id, run.id)
    raw = client.beta.threads.runs.with_raw_response.update(run.id, thread_id=thread_id, metadata={"k": "v"})
    updated = raw.parse()
    assert updated.metadata == {"k": "v"}
    assert updated.status == "completed"
    assert_schema("RunObject", raw.http_response.json())
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).metadata == {"k": "v"}


def test_runs_list_pagination(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "count")
    ids: list[str] = []
    for _ in range(3):
        run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
        assert wait_for_run(client, thread_id, run.id).status == "completed"
        ids.append(run.id)

    page = client.beta.threads.runs.list(thread_id, limit=2)
    assert [run.id for run in page.data] == [ids[2], ids[1]]
    assert page.has_more is True
    assert [run.id for run in client.beta.threads.runs.list(thread_id, limit=1)] == ids[::-1]
    assert [run.id for run in client.beta.threads.runs.list(thread_id, order="asc", limit=2)] == ids
    after = client.beta.threads.runs.list(thread_id, order="asc", after=ids[0])
    assert [run.id for run in after.data] == ids[1:]
    assert after.has_more is False
    before = client.beta.threads.runs.list(thread_id, order="asc", before=ids[2])
    assert [run.id for run in before.data] == ids[:2]

    raw = client.beta.threads.runs.with_raw_response.list(thread_id).http_response.json()
    assert raw["object"] == "list"
    assert raw["first_id"] == ids[2]
    assert raw["last_id"] == ids[0]
    for body in raw["data"]:
        assert_schema("RunObject", body)
    assert list(client.beta.threads.runs.list(new_thread(client, "empty"))) == []


def test_run_steps_list_retrieve_and_include(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "steps please")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, include=[FILE_SEARCH_CONTENT])
    assert wait_for_run(client, thread_id, run.id).status == "completed"

    (step,) = list(
        client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, include=[FILE_SEARCH_CONTENT])
    )
    fetched = client.beta.threads.runs.steps.retrieve(
        step.id, thread_id=thread_id, run_id=run.id, include=[FILE_SEARCH_CONTENT]
    )
    assert fetched == step
    raw = client.beta.threads.runs.steps.with_raw_response.retrieve(
        step.id, thread_id=thread_id, run_id=run.id
    )
    assert_schema("RunStepObject", raw.http_response.json())

    for call in (
        lambda: client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, include=["usage"]),  # type: ignore[list-item]
        lambda: client.beta.threads.runs.steps.retrieve(
            step.id,
            thread_id=thread_id,
            run_id=run.id,
            include=["step_details.tool_calls[*].code_interpreter.outputs"],  # type: ignore[list-item]
        ),
        lambda: client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, include=["nope"]),  # type: ignore[list-item]
    ):
        with pytest.raises(openai.BadRequestError) as info:
            call()
        assert info.value.status_code == 400
        assert api_error_body(info.value)["param"] == "include[]"
    # The refused create made no run.
    assert len(client.beta.threads.runs.list(thread_id).data) == 1

    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.runs.steps.retrieve("step_missing", thread_id=thread_id, run_id=run.id)
    assert api_error_body(missing.value)["message"] == "No run step found with id 'step_missing'."


def test_unknown_assistant_thread_and_run(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread_id = new_thread(client, "404s")

    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.runs.create(thread_id, assistant_id="asst_missing")
    assert api_error_body(info.value) == {
        "message": "No assistant found with id 'asst_missing'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    # Nothing was left behind: the thread is not locked.
    assert list(client.beta.threads.runs.list(thread_id)) == []
    client.beta.threads.messages.create(thread_id, role="user", content="still open")

    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.runs.create("thread_missing", assistant_id=assistant.id)
    assert api_error_body(info.value)["message"] == "No thread found with id 'thread_missing'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.list("thread_missing")
    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread_id)
    assert api_error_body(info.value)["message"] == "No run found with id 'run_missing'."

    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    wait_for_run(client, thread_id, run.id)
    other_thread = new_thread(client, "other")
    for call in (
        lambda: client.beta.threads.runs.retrieve(run.id, thread_id=other_thread),
        lambda: client.beta.threads.runs.update(run.id, thread_id=other_thread, metadata={"a": "b"}),
        lambda: client.beta.threads.runs.cancel(run.id, thread_id=other_thread),
        lambda: client.beta.threads.runs.steps.list(run.id, thread_id=other_thread),
        lambda: client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=other_thread, tool_outputs=[]),
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert api_error_body(info.value)["message"] == f"No run found with id '{run.id}'."

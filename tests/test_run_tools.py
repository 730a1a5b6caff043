"""Function calling through the SDK: round trips (sync, async), parallel calls, tool_choice."""

from __future__ import annotations

import anyio
import openai
import pytest

from tests.openapi import assert_schema
from tests.run_support import (
    await_run,
    function_tool,
    only_assistant_reply,
    text_of,
    time_limit,
    wait_for_run,
    wait_for_status,
)

WEATHER = function_tool("get_weather", "Weather for a city")
TIME = function_tool("get_time", "Local time in a city")


def new_thread(client: openai.OpenAI, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def error_body(error: openai.APIStatusError) -> dict[str, object]:
    assert isinstance(error.body, dict), error.body
    return error.body


def test_sync_round_trip_with_the_poll_helpers(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread_id = new_thread(client, '/call get_weather {"city": "Paris"}')
    with time_limit(10, "create_and_poll"):
        run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
    started_at = run.started_at
    assert started_at is not None

    with time_limit(10, "submit_tool_outputs_and_poll"):
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "18C and sunny"}],
        )
    assert run.status == "completed"
    assert run.required_action is None
    assert run.started_at == started_at
    assert run.completed_at is not None
    assert run.expires_at is None
    reply = only_assistant_reply(client, thread_id, run.id)
    assert text_of(reply) == "get_weather returned 18C and sunny"
    assert reply.assistant_id == assistant.id

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc"))
    assert [(step.type, step.status) for step in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    (detail,) = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert detail.id == call.id
    assert detail.function.output == "18C and sunny"  # type: ignore[union-attr]
    assert detail.function.arguments == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert steps[1].step_details.message_creation.message_id == reply.id  # type: ignore[union-attr]
    # The run's usage is the sum over both model turns.
    assert run.usage is not None
    assert all(step.usage is not None for step in steps)
    assert run.usage.prompt_tokens == sum(step.usage.prompt_tokens for step in steps)  # type: ignore[union-attr]
    assert run.usage.completion_tokens == sum(step.usage.completion_tokens for step in steps)  # type: ignore[union-attr]
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    for raw in client.beta.threads.runs.steps.with_raw_response.list(
        run.id, thread_id=thread_id
    ).http_response.json()["data"]:
        assert_schema("RunStepObject", raw)


@pytest.mark.anyio
async def test_async_round_trip(aclient: openai.AsyncOpenAI) -> None:
    assistant = await aclient.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = await aclient.beta.threads.create(
        messages=[{"role": "user", "content": '/call get_weather {"city": "Oslo"}'}]
    )
    with anyio.fail_after(10):
        run = await aclient.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.arguments == '{"city":"Oslo"}'
    with anyio.fail_after(10):
        run = await aclient.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "-3C"}]
        )
    assert run.status == "completed"
    messages = [m async for m in aclient.beta.threads.messages.list(thread.id)]
    assert [m.role for m in messages] == ["assistant", "user"]
    assert text_of(messages[0]) == "get_weather returned -3C"
    assert messages[0].run_id == run.id
    assert (await await_run(aclient, thread.id, run.id)).status == "completed"


def test_parallel_calls_need_every_output(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER, TIME])
    thread_id = new_thread(client, '/call get_weather {"city": "Paris"}\n/call get_time {"city": "Tokyo"}')
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    assert run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_time", '{"city":"Tokyo"}'),
    ]
    assert len({c.id for c in calls}) == 2
    weather, clock = calls
    (step,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    assert [c.id for c in step.step_details.tool_calls] == [weather.id, clock.id]  # type: ignore[union-attr]

    # Only one of two outputs: refused, and nothing changes.
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": weather.id, "output": "sunny"}]
        )
    assert info.value.status_code == 400
    assert error_body(info.value)["param"] == "tool_outputs"
    assert clock.id in str(error_body(info.value)["message"])

    # An id the run is not waiting for.
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[
                {"tool_call_id": weather.id, "output": "sunny"},
                {"tool_call_id": "call_unknown", "output": "?"},
            ],
        )
    assert info.value.status_code == 400
    assert "call_unknown" in str(error_body(info.value)["message"])

    # The same call twice.
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[
                {"tool_call_id": weather.id, "output": "sunny"},
                {"tool_call_id": weather.id, "output": "cloudy"},
            ],
        )
    assert info.value.status_code == 400
    assert error_body(info.value)["param"] == "tool_outputs[1].tool_call_id"

    still = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert still.status == "requires_action"
    assert [c.id for c in still.required_action.submit_tool_outputs.tool_calls] == [weather.id, clock.id]  # type: ignore[union-attr]

    # Both, in the other order: each output goes to its own call.
    with time_limit(10, "submit_tool_outputs_and_poll"):
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread_id,
            tool_outputs=[
                {"tool_call_id": clock.id, "output": "9am"},
                {"tool_call_id": weather.id, "output": "sunny"},
            ],
        )
    assert done.status == "completed"
    reply = text_of(only_assistant_reply(client, thread_id, run.id))
    assert sorted(reply.splitlines()) == ["get_time returned 9am", "get_weather returned sunny"]
    (tool_step,) = [
        s for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread_id) if s.type == "tool_calls"
    ]
    outputs = {c.id: c.function.output for c in tool_step.step_details.tool_calls}  # type: ignore[union-attr]
    assert outputs == {weather.id: "sunny", clock.id: "9am"}


def test_submitting_when_not_requires_action_is_400(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread_id = new_thread(client, "no tools needed")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": "call_x", "output": "x"}]
        )
    assert info.value.status_code == 400
    assert error_body(info.value)["type"] == "invalid_request_error"
    assert "completed" in str(error_body(info.value)["message"])
    refused_stream = client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": "call_x", "output": "x"}]
    )
    with pytest.raises(openai.BadRequestError), refused_stream as stream:
        stream.until_done()

    # Also a second submission for outputs already accepted.
    thread_id = new_thread(client, "/call get_weather {}")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id  # type: ignore[union-attr]
    outputs = [{"tool_call_id": call_id, "output": "once"}]
    client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=outputs)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=outputs)  # type: ignore[arg-type]
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    assert text_of(only_assistant_reply(client, thread_id, run.id)) == "get_weather returned once"


def test_text_then_a_tool_call_in_the_same_turn(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("f")])
    thread_id = new_thread(client, 'Checking\n/call f {"x": 1}')
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    (call,) = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert (call.function.name, call.function.arguments) == ("f", '{"x":1}')

    said = only_assistant_reply(client, thread_id, run.id)
    assert text_of(said) == "Checking"
    assert said.status == "completed"
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [
        ("message_creation", "completed"),
        ("tool_calls", "in_progress"),
    ]
    assert steps[0].step_details.message_creation.message_id == said.id  # type: ignore[union-attr]

    with time_limit(10, "submit_tool_outputs_and_poll"):
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}]
        )
    assert done.status == "completed"
    messages = list(client.beta.threads.messages.list(thread_id, order="asc"))
    assert [(m.role, text_of(m)) for m in messages] == [
        ("user", 'Checking\n/call f {"x": 1}'),
        ("assistant", "Checking"),
        ("assistant", "f returned ok"),
    ]
    assert {m.run_id for m in messages[1:]} == {run.id}
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc"))
    assert [(s.type, s.status) for s in steps] == [
        ("message_creation", "completed"),
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]


def test_tool_choice_required_forces_a_call_to_the_first_function(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER, TIME])
    thread_id = new_thread(client, "just chatting")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, tool_choice="required")
    assert run.tool_choice == "required"
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", "{}")]


def test_tool_choice_named_function(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER, TIME])
    thread_id = new_thread(client, '/call get_weather {"city": "Rome"}')
    run = client.beta.threads.runs.create(
        thread_id,
        assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert run.tool_choice is not None
    assert run.tool_choice.type == "function"  # type: ignore[union-attr]
    assert run.tool_choice.function.name == "get_time"  # type: ignore[union-attr]
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [c.function.name for c in calls] == ["get_time"]

    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(
            new_thread(client, "x"),
            assistant_id=assistant.id,
            tool_choice={"type": "function", "function": {"name": "not_a_tool"}},
        )
    assert error_body(info.value)["param"] == "tool_choice"


def test_tool_choice_none_answers_with_text(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread_id = new_thread(client, "/call get_weather {}")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, tool_choice="none")
    assert wait_for_run(client, thread_id, run.id).status == "completed"
    assert text_of(only_assistant_reply(client, thread_id, run.id)) == "You said: /call get_weather {}"


def test_forcing_a_tool_the_run_does_not_have_is_refused_up_front(client: openai.OpenAI) -> None:
    plain = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(
            new_thread(client, "x"), assistant_id=plain.id, tool_choice={"type": "code_interpreter"}
        )
    assert error_body(info.value)["param"] == "tool_choice"


def test_parallel_tool_calls_false_makes_one_call(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER, TIME])
    thread_id = new_thread(client, '/call get_weather {"city": "Paris"}\n/call get_time {"city": "Tokyo"}')
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, parallel_tool_calls=False)
    assert run.parallel_tool_calls is False
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", '{"city":"Paris"}')]
    with time_limit(10, "submit_tool_outputs_and_poll"):
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": calls[0].id, "output": "rain"}]
        )
    assert done.status == "completed"
    assert text_of(only_assistant_reply(client, thread_id, run.id)) == "get_weather returned rain"


def test_run_tools_override_the_assistants(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread_id = new_thread(client, "/call get_time {}")
    run = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, tools=[TIME])
    run = wait_for_status(client, thread_id, run.id, "requires_action")
    assert [c.function.name for c in run.required_action.submit_tool_outputs.tool_calls] == ["get_time"]  # type: ignore[union-attr]

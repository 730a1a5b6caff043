"""The real embedded model (SmolLM2-135M-Instruct through llama.cpp), as `make serve` runs it.

A 135M model says little of sense, so these tests check what must hold whatever it says: real text
comes back through every path, token counts are the model's, limits stop it, grammars constrain it
(a forced tool call's arguments parse and follow the schema), and a closed stream frees the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from tests.harness import Server

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with no model settings but the harness's scripted default taken away: the defaults of
    `make serve`."""
    server = Server(
        data_dir=tmp_path_factory.mktemp("assistd-embedded"), env={"ASSISTD_DEFAULT_MODEL": ""}
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(embedded: Server) -> Iterator[openai.OpenAI]:
    # A cold model loads on the first call; a slow machine must not fail the test for it.
    with openai.OpenAI(base_url=f"{embedded.url}/v1", api_key="sk-test", max_retries=0, timeout=120) as sdk:
        yield sdk


def test_tutorial_chat_completion_answers_with_real_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "안녕"}], max_tokens=48
    )
    choice = completion.choices[0]
    assert completion.model == "gpt-3.5-turbo"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert not choice.message.content.startswith("You said:")  # not the scripted model
    assert choice.finish_reason in {"stop", "length"}
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 48


def test_streamed_text_equals_its_deltas_and_usage_counts_them(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    usage = None
    finish = None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        else:
            usage = chunk.usage
    assert "".join(pieces).strip()
    assert len([piece for piece in pieces if piece]) > 1  # streamed as generated, not in one piece
    assert finish in {"stop", "length"}
    assert usage is not None
    assert 0 < usage.completion_tokens <= 32


def test_max_tokens_stops_the_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
        max_tokens=5,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5


def test_same_seed_at_temperature_zero_gives_the_same_answer(client: openai.OpenAI) -> None:
    def ask() -> str | None:
        completion = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=16,
            temperature=0,
            seed=7,
        )
        return completion.choices[0].message.content

    assert ask() == ask()


def test_logprobs_are_the_models_own_whole_and_streamed(client: openai.OpenAI) -> None:
    asked: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Tell me a long story about a dragon."}],
        "max_tokens": 8,
        "temperature": 0,
        "logprobs": True,
    }
    whole = client.chat.completions.create(**asked, top_logprobs=2)
    choice = whole.choices[0]
    assert choice.finish_reason == "length"
    assert whole.usage is not None
    assert choice.logprobs is not None
    entries = choice.logprobs.content or []
    assert len(entries) == whole.usage.completion_tokens == 8
    # The tokens' bytes spell the answer (a token's text alone can be a piece of a UTF-8 character).
    assert b"".join(bytes(entry.bytes or []) for entry in entries).decode() == choice.message.content
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob
        # Greedy: each token is the most likely one.
        assert (entry.top_logprobs[0].token, entry.top_logprobs[0].logprob) == (entry.token, entry.logprob)

    # Streamed, each token comes with its delta; top_logprobs 0 lists no alternatives.
    text, streamed = "", []
    for chunk in client.chat.completions.create(**asked, top_logprobs=0, stream=True):
        for delta in chunk.choices:
            text += delta.delta.content or ""
            if delta.delta.content:
                assert delta.logprobs is not None
                streamed += delta.logprobs.content or []
    assert text == choice.message.content
    assert [(entry.token, entry.top_logprobs) for entry in streamed] == [
        (entry.token, []) for entry in entries
    ]


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_weather_tool_is_called_with_arguments_that_follow_the_schema(
    client: openai.OpenAI, tool_choice: str
) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What is the weather like in Paris today?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice=tool_choice,  # type: ignore[arg-type]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])


def test_json_schema_response_format_output_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Invent a person: a name and an age."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        max_tokens=64,
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), schema)


def test_a_run_on_an_openai_model_name_completes_with_real_text(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4-turbo-preview",
        name="Math Tutor",
        instructions="You are a personal math tutor. Answer briefly.",
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is 2 + 2?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256, poll_interval_ms=200
    )
    assert run.status in {"completed", "incomplete"}, run.last_error
    assert run.model == "gpt-4-turbo-preview"
    assert run.usage is not None
    assert 0 < run.usage.completion_tokens <= 256
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.role == "assistant"
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value.strip()


def test_function_calling_run_round_trip(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the weather in Berlin?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice="required",
        max_completion_tokens=256,  # after a tool result, this small model rambles on to its limit
        poll_interval_ms=200,
    )
    assert run.status == "requires_action", run.last_error
    assert run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [call.function.name for call in calls] == ["get_weather"] * len(calls)
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "Sunny, 21 degrees C"} for call in calls],
        poll_interval_ms=200,
    )
    assert run.status in {"completed", "incomplete"}, run.last_error
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.role == "assistant"
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value.strip()


def test_file_search_run_finds_the_document_and_answers(client: openai.OpenAI) -> None:
    notes = client.files.create(
        file=("moons.txt", b"The planet Zorblax has three moons named Pim, Quorra and Tessel."),
        purpose="assistants",
    )
    other = client.files.create(
        file=("pancakes.txt", b"Whisk two eggs with milk and flour to make lemon pancakes."),
        purpose="assistants",
    )
    store = client.vector_stores.create(name="notes")
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id, file_ids=[notes.id, other.id], poll_interval_ms=100
    )
    assert batch.file_counts.completed == 2
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="Answer from the files.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What are the moons of Zorblax called?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "file_search"},
        # Greedy: at temperature 1 this small model now and then writes a call that does not end within
        # the token budget, and a cut-off call is lost.
        temperature=0,
        max_completion_tokens=256,
        poll_interval_ms=200,
    )
    assert run.status in {"completed", "incomplete"}, run.last_error
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    details = steps[0].step_details
    assert details.type == "tool_calls"
    [call] = details.tool_calls
    assert call.type == "file_search"
    # The model wrote its own query (the grammar holds it to the schema); the search found the file.
    assert (call.file_search.results or [])[0].file_id == notes.id
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.content[0].type == "text"
    assert reply.content[0].text.value.strip()


def test_a_closed_stream_frees_the_model(client: openai.OpenAI, embedded: Server) -> None:
    """Closing a stream stops generation: the next answer is not stuck behind 4,000 unread tokens."""
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Count from one to ten thousand, in words."}],
        max_tokens=4000,
        stream=True,
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received >= 3:
            break
    stream.close()

    started = time.monotonic()
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert completion.choices[0].message.content is not None
    # Generating 4,000 tokens on this model takes far longer than this on any machine it runs on.
    assert time.monotonic() - started < 20, Path(embedded.log_path).read_text()[-2000:]


def test_another_assistd_relays_the_embedded_model(embedded: Server, tmp_path: Path) -> None:
    """assistd as the OpenAI-compatible upstream of another assistd: text and tool calls, streamed and
    not, pass through both unchanged."""
    relay = Server(
        data_dir=tmp_path / "relay",
        env={"ASSISTD_DEFAULT_MODEL": "", "ASSISTD_UPSTREAM_BASE_URL": f"{embedded.url}/v1"},
    ).start()
    try:
        with openai.OpenAI(base_url=f"{relay.url}/v1", api_key="sk-test", max_retries=0, timeout=120) as sdk:
            question = [{"role": "user", "content": "What is the capital of France?"}]
            whole = sdk.chat.completions.create(
                model="gpt-4o",
                messages=question,
                max_tokens=16,
                temperature=0,
                seed=3,  # type: ignore[arg-type]
            )
            assert whole.model == "gpt-4o"
            text = whole.choices[0].message.content
            assert text

            streamed = sdk.chat.completions.create(
                model="gpt-4o",
                messages=question,  # type: ignore[arg-type]
                max_tokens=16,
                temperature=0,
                seed=3,
                stream=True,
            )
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == text

            with sdk.chat.completions.stream(
                model="gpt-4o",
                messages=[{"role": "user", "content": "What is the weather in Rome?"}],
                tools=[WEATHER_TOOL],  # type: ignore[list-item]
                tool_choice="required",
            ) as stream:
                final = stream.get_final_completion()
            calls = final.choices[0].message.tool_calls
            assert final.choices[0].finish_reason == "tool_calls"
            assert calls
            assert calls[0].function.name == "get_weather"
            jsonschema.validate(
                json.loads(calls[0].function.arguments), WEATHER_TOOL["function"]["parameters"]
            )
    finally:
        relay.stop()

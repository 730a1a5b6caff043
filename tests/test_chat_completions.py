"""Chat Completions through the official SDK (sync, async, streamed, the stream helper) and raw HTTP.

The scripted model answers every model name here (the harness sets ASSISTD_DEFAULT_MODEL=scripted): it
replies "You said: <last user message>", and its tokens are words and punctuation marks, so every usage
number below is exact. A message counts 3 tokens plus the tokens of its text (and of its tool calls'
``name arguments``). Chat stores nothing, so most tests run on one store backend only.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.harness import Server
from tests.openapi import assert_schema

SPEC = "chat-completions.yaml"
PATH = "/v1/chat/completions"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time in a time zone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
TOOLS = [WEATHER_TOOL, TIME_TOOL]
CALL_WEATHER = '/call get_weather {"city": "Paris"}'  # 12 tokens: / call get_weather { " city " : " Paris " }
CALL_TIME = "/call get_time {}"  # 5 tokens
WEATHER_ARGS = '{"city":"Paris"}'  # the scripted model sends compact JSON
WEATHER_CALL_TOKENS = 10  # get_weather { " city " : " Paris " }
TIME_CALL_TOKENS = 3  # get_time { }


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def usage_of(completion: ChatCompletion | ChatCompletionChunk) -> tuple[int, int, int]:
    assert completion.usage is not None, completion
    usage = completion.usage
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


def assert_spec_shape(component: str, payload: dict[str, Any]) -> None:
    """The payload against the spec's schema. ``system_fingerprint`` (a string in the spec) is left out:
    no backend here has one to report."""
    assert "system_fingerprint" not in payload
    assert_schema(component, payload, spec=SPEC)


def error_body(error: openai.APIStatusError) -> dict[str, Any]:
    """The inner ``error`` object the SDK read from the response."""
    assert isinstance(error.body, dict), error.body
    return error.body


def raw_chunks(http: httpx.Client, body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The non-empty lines of a streamed answer, and its chunks (every data line but [DONE])."""
    with http.stream("POST", PATH, json={**body, "stream": True}, timeout=15) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line != ""]
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines if line != "data: [DONE]"]
    return lines, chunks


def calls_from_chunks(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    """Tool calls put together from stream deltas, as user code does it."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or []:
                call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
                if fragment.id:
                    call["id"] = fragment.id
                if fragment.function and fragment.function.name:
                    call["name"] += fragment.function.name
                if fragment.function and fragment.function.arguments:
                    call["arguments"] += fragment.function.arguments
    return calls


# -- a whole answer -------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_create_answers_with_the_whole_completion(client: openai.OpenAI, http: httpx.Client) -> None:
    before = int(time.time())
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=user("Hello, world!")
    )  # prompt: 3 + Hello , world ! = 7
    after = int(time.time())

    assert completion.id.startswith("chatcmpl-")
    assert len(completion.id) > len("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert before - 1 <= completion.created <= after + 1
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: Hello, world!"
    assert choice.message.tool_calls is None
    assert choice.message.refusal is None
    assert usage_of(completion) == (7, 7, 14)  # You said : Hello , world !

    # The same request on the wire: the body is exactly the spec's object.
    response = http.post(PATH, json={"model": "gpt-4o-mini", "messages": user("Hello, world!")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_spec_shape("CreateChatCompletionResponse", body)
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["id"].startswith("chatcmpl-")
    assert body["id"] != completion.id
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "You said: Hello, world!",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 7, "total_tokens": 14}


@pytest.mark.backend("sqlite")
def test_tutorial_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "안녕"}]
    )
    assert completion.model == "gpt-3.5-turbo"
    assert completion.choices[0].message.content == "You said: 안녕"
    assert completion.choices[0].finish_reason == "stop"
    assert usage_of(completion) == (4, 4, 8)


def test_create_on_every_store_backend(client: openai.OpenAI) -> None:
    # Chat stores nothing, but the route must work whatever the store is.
    completion = client.chat.completions.create(model="gpt-4o", messages=user("ping"))
    assert completion.choices[0].message.content == "You said: ping"
    assert usage_of(completion) == (4, 4, 8)


# -- messages -------------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_system_developer_and_multi_turn_history(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are terse."},  # 3 + 4
            {"role": "developer", "content": "Answer in English."},  # 3 + 4
            {"role": "user", "content": "first", "name": "alice"},  # 3 + 1
            {"role": "assistant", "content": "You said: first"},  # 3 + 4
            {"role": "user", "content": "second"},  # 3 + 1
        ],
    )
    assert completion.choices[0].message.content == "You said: second"
    assert usage_of(completion) == (29, 4, 33)


@pytest.mark.backend("sqlite")
def test_tool_output_round_trip(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "system", "content": "You are terse."},  # 3 + 4
            {"role": "developer", "content": "Answer in English."},  # 3 + 4
            {"role": "user", "content": "What is the weather in Paris?"},  # 3 + 7
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": WEATHER_ARGS},
                    }
                ],
            },  # 3 + 10
            {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny, 21 C"},  # 3 + 4
        ],
    )
    choice = completion.choices[0]
    assert choice.message.content == "get_weather returned sunny, 21 C"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert usage_of(completion) == (44, 6, 50)


@pytest.mark.backend("sqlite")
def test_two_tool_outputs_give_one_line_each(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather and time?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "rain"}]},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
        ],
    )
    assert completion.choices[0].message.content == "get_weather returned rain\nget_time returned noon"


@pytest.mark.backend("sqlite")
def test_user_content_as_parts_with_an_image(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at this"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                    },
                    {"type": "text", "text": "and this."},
                ],
            }
        ],
    )
    # The text parts are read one per line; the image is accepted (the scripted model cannot see it).
    assert completion.choices[0].message.content == "You said: Look at this\nand this."
    assert usage_of(completion) == (9, 9, 18)


@pytest.mark.backend("sqlite")
def test_system_content_as_text_parts(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},  # 3 + 3
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},  # 3 + 1
        ],
    )
    assert completion.choices[0].message.content == "You said: hi"
    assert usage_of(completion) == (10, 4, 14)


# -- streaming ------------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_stream_deltas_add_up_to_the_whole_answer(client: openai.OpenAI) -> None:
    text = "Streams, like rivers, end somewhere."
    whole = client.chat.completions.create(model="gpt-4o", messages=user(text))
    stream = client.chat.completions.create(model="gpt-4o", messages=user(text), stream=True)
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert whole.choices[0].message.content == f"You said: {text}"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    # One token per chunk: a role chunk, 11 tokens (You said : Streams , like rivers , end somewhere .),
    # the finish chunk.
    assert len(chunks) == 1 + 11 + 1
    assert all(c.usage is None for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"gpt-4o"}


@pytest.mark.backend("sqlite")
def test_stream_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=user("Count me."),  # 3 + 3
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert usage_of(last) == (6, 6, 12)  # You said : Count me .
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "You said: Count me."


@pytest.mark.backend("sqlite")
@pytest.mark.anyio
async def test_async_stream_equals_async_create(aclient: openai.AsyncOpenAI) -> None:
    text = "Async: still deterministic."
    whole = await aclient.chat.completions.create(model="gpt-4o", messages=user(text))
    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=user(text), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content == f"You said: {text}"
    assert chunks[-1].choices == []
    assert usage_of(chunks[-1]) == usage_of(whole) == (8, 8, 16)
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    assert {c.model for c in chunks} == {"gpt-4o"}


@pytest.mark.backend("sqlite")
def test_raw_stream_wire_format(http: httpx.Client) -> None:
    body = {"model": "gpt-4o", "messages": user("Hi there."), "stream_options": {"include_usage": True}}
    lines, chunks = raw_chunks(http, body)

    assert all(line.startswith("data: ") for line in lines), [
        ln for ln in lines if not ln.startswith("data: ")
    ]
    assert not any(line.startswith("event:") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert lines.count("data: [DONE]") == 1
    for chunk in chunks:
        assert_spec_shape("CreateChatCompletionStreamResponse", chunk)
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert {c["created"] for c in chunks} == {chunks[0]["created"]}
    assert abs(chunks[0]["created"] - time.time()) < 60
    assert {c["model"] for c in chunks} == {"gpt-4o"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}

    first = chunks[0]["choices"][0]
    assert first["index"] == 0
    assert first["delta"]["role"] == "assistant"
    assert first["delta"]["content"] == ""
    assert first["finish_reason"] is None
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert contents == ["You", " said", ":", " Hi", " there", "."]
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in chunks[1:-2])
    finish = chunks[-2]["choices"][0]
    assert finish["delta"] == {}
    assert finish["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])


@pytest.mark.backend("sqlite")
def test_system_fingerprint_matches_the_spec(http: httpx.Client) -> None:
    response = http.post(PATH, json={"model": "gpt-4o", "messages": user("hi")})
    assert response.status_code == 200
    _, chunks = raw_chunks(http, {"model": "gpt-4o", "messages": user("hi")})
    assert_schema("CreateChatCompletionResponse", response.json(), spec=SPEC)
    for chunk in chunks:
        assert_schema("CreateChatCompletionStreamResponse", chunk, spec=SPEC)


@pytest.mark.backend("sqlite")
def test_raw_stream_without_include_usage_has_no_usage_chunk(http: httpx.Client) -> None:
    lines, chunks = raw_chunks(http, {"model": "gpt-4o", "messages": user("ok")})
    assert lines[-1] == "data: [DONE]"
    assert all(len(c["choices"]) == 1 for c in chunks)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c.get("usage") is None for c in chunks)


@pytest.mark.backend("sqlite")
def test_stream_helper_and_final_completion(client: openai.OpenAI) -> None:
    deltas: list[str] = []
    done: list[str] = []
    with client.chat.completions.stream(model="gpt-4o", messages=user("Helper, please.")) as stream:
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
            elif event.type == "content.done":
                done.append(event.content)
        final = stream.get_final_completion()
    assert "".join(deltas) == "You said: Helper, please."
    assert done == ["You said: Helper, please."]
    assert final.id.startswith("chatcmpl-")
    assert final.model == "gpt-4o"
    assert final.choices[0].message.content == "You said: Helper, please."
    assert final.choices[0].finish_reason == "stop"


# -- tool calls -----------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_one_tool_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user(CALL_WEATHER),
        tools=TOOLS,  # type: ignore[arg-type]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == WEATHER_ARGS  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert usage_of(completion) == (15, WEATHER_CALL_TOKENS, 15 + WEATHER_CALL_TOKENS)


@pytest.mark.backend("sqlite")
def test_two_parallel_tool_calls(client: openai.OpenAI, http: httpx.Client) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user(f"{CALL_WEATHER}\n{CALL_TIME}"),
        tools=TOOLS,  # type: ignore[arg-type]
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    assert len({c.id for c in calls}) == 2
    assert completion.choices[0].finish_reason == "tool_calls"
    assert usage_of(completion) == (20, WEATHER_CALL_TOKENS + TIME_CALL_TOKENS, 33)

    response = http.post(PATH, json={"model": "gpt-4o", "messages": user(CALL_WEATHER), "tools": TOOLS})
    assert response.status_code == 200
    assert_spec_shape("CreateChatCompletionResponse", response.json())


@pytest.mark.backend("sqlite")
def test_text_beside_a_call_comes_first(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user(f"Let me check.\n{CALL_WEATHER}"),
        tools=TOOLS,  # type: ignore[arg-type]
    )
    message = completion.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    assert [c.function.name for c in message.tool_calls] == ["get_weather"]  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.backend("sqlite")
def test_tool_choice_required_without_a_call_calls_the_first_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user("hello"),
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="required",
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", "{}")]  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.backend("sqlite")
def test_named_tool_choice_forces_that_function(client: openai.OpenAI) -> None:
    forced = client.chat.completions.create(
        model="gpt-4o",
        messages=user(CALL_WEATHER),
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = forced.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_time", "{}")]  # type: ignore[union-attr]

    asked = client.chat.completions.create(
        model="gpt-4o",
        messages=user(f'{CALL_WEATHER}\n/call get_time {{"tz": "UTC"}}'),
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = asked.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_time", '{"tz":"UTC"}')]  # type: ignore[union-attr]


@pytest.mark.backend("sqlite")
def test_tool_choice_none_never_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user(CALL_WEATHER),
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="none",
    )
    choice = completion.choices[0]
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert choice.message.content == f"You said: {CALL_WEATHER}"


@pytest.mark.backend("sqlite")
def test_parallel_tool_calls_false_gives_only_the_first(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user(f"{CALL_WEATHER}\n{CALL_TIME}"),
        tools=TOOLS,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.name for c in calls] == ["get_weather"]  # type: ignore[union-attr]
    assert usage_of(completion) == (20, WEATHER_CALL_TOKENS, 20 + WEATHER_CALL_TOKENS)


@pytest.mark.backend("sqlite")
def test_tool_call_on_an_unknown_function_is_dropped(client: openai.OpenAI) -> None:
    # A model may only call the functions it was given.
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=user("/call launch_rockets {}"),
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "You said: /call launch_rockets {}"


@pytest.mark.backend("sqlite")
def test_streamed_tool_calls_with_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=user(f"{CALL_WEATHER}\n{CALL_TIME}"),
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls = calls_from_chunks(chunks)
    assert sorted(calls) == [0, 1]
    assert [(calls[i]["name"], calls[i]["arguments"]) for i in (0, 1)] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", "{}"),
    ]
    assert all(calls[i]["id"].startswith("call_") for i in (0, 1))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert usage_of(chunks[-1]) == (20, WEATHER_CALL_TOKENS + TIME_CALL_TOKENS, 33)


@pytest.mark.backend("sqlite")
def test_streamed_tool_call_fragments_on_the_wire(http: httpx.Client) -> None:
    _, chunks = raw_chunks(
        http, {"model": "gpt-4o", "messages": user(f"{CALL_WEATHER}\n{CALL_TIME}"), "tools": TOOLS}
    )
    fragments = [fragment for c in chunks for fragment in c["choices"][0]["delta"].get("tool_calls", [])]
    by_index: dict[int, list[dict[str, Any]]] = {}
    for fragment in fragments:
        by_index.setdefault(fragment["index"], []).append(fragment)
    assert sorted(by_index) == [0, 1]
    # Calls do not interleave: all of call 0, then all of call 1.
    assert [f["index"] for f in fragments] == sorted(f["index"] for f in fragments)
    for index, name, arguments in ((0, "get_weather", WEATHER_ARGS), (1, "get_time", "{}")):
        head, *rest = by_index[index]
        assert set(head) == {"index", "id", "type", "function"}
        assert head["id"].startswith("call_")
        assert head["type"] == "function"
        assert head["function"] == {"name": name, "arguments": ""}
        assert rest, "no argument fragments"
        for fragment in rest:
            assert set(fragment) == {"index", "function"}
            assert set(fragment["function"]) == {"arguments"}
        assert "".join(f["function"]["arguments"] for f in rest) == arguments
    assert by_index[0][0]["id"] != by_index[1][0]["id"]
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# -- n, token limits, formats, accepted parameters -------------------------------------------------


@pytest.mark.backend("sqlite")
def test_n_gives_that_many_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=user("twice"), n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert [c.message.content for c in completion.choices] == ["You said: twice"] * 2
    assert [c.finish_reason for c in completion.choices] == ["stop", "stop"]
    # The prompt is read once; each choice adds its completion.
    assert usage_of(completion) == (4, 8, 12)


@pytest.mark.backend("sqlite")
def test_n_streamed_gives_chunks_for_each_index(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=user("twice"), n=2, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: "You said: twice", 1: "You said: twice"}
    assert finishes == {0: "stop", 1: "stop"}
    assert usage_of(chunks[-1]) == (4, 8, 12)


@pytest.mark.backend("sqlite")
def test_max_tokens_cuts_every_choice_with_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=user("a long answer please"), n=2, max_tokens=2
    )
    assert [c.message.content for c in completion.choices] == ["You said", "You said"]
    assert [c.finish_reason for c in completion.choices] == ["length", "length"]
    assert usage_of(completion) == (7, 4, 11)


@pytest.mark.backend("sqlite")
def test_max_completion_tokens_cuts_with_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=user("a long answer please"), max_completion_tokens=3
    )
    assert completion.choices[0].message.content == "You said:"
    assert completion.choices[0].finish_reason == "length"
    assert usage_of(completion) == (7, 3, 10)

    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=user("a long answer please"),
        max_completion_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said:"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert usage_of(chunks[-1]) == (7, 3, 10)


@pytest.mark.backend("sqlite")
def test_max_tokens_larger_than_the_answer_changes_nothing(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=user("short"), max_tokens=4)
    assert completion.choices[0].message.content == "You said: short"
    assert completion.choices[0].finish_reason == "stop"
    assert usage_of(completion) == (4, 4, 8)


@pytest.mark.backend("sqlite")
def test_response_format_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Answer in JSON."}, *user("hi")],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"reply": "You said: hi"}
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.backend("sqlite")
def test_response_format_json_schema_and_text(client: openai.OpenAI) -> None:
    schema_answer = client.chat.completions.create(
        model="gpt-4o",
        messages=user("hi"),
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"reply": {"type": "string"}},
                    "required": ["reply"],
                    "additionalProperties": False,
                },
            },
        },
    )
    content = schema_answer.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"reply": "You said: hi"}

    text_answer = client.chat.completions.create(
        model="gpt-4o", messages=user("hi"), response_format={"type": "text"}
    )
    assert text_answer.choices[0].message.content == "You said: hi"


@pytest.mark.backend("sqlite")
def test_sampling_and_service_parameters_are_accepted(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=user("hi"),
        stop=["\n\n", "END"],
        seed=42,
        temperature=0.2,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        user="user-1234",
        metadata={"purpose": "test"},
        store=False,
    )
    assert raw.status_code == 200
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hi"
    assert usage_of(completion) == (4, 4, 8)

    at_the_limits = client.chat.completions.create(
        model="gpt-4o",
        messages=user("hi"),
        stop="END",
        temperature=2,
        top_p=0,
        presence_penalty=-2,
        frequency_penalty=2,
        n=128,
        max_tokens=1,
    )
    assert len(at_the_limits.choices) == 128
    assert {c.message.content for c in at_the_limits.choices} == {"You"}
    assert usage_of(at_the_limits) == (4, 128, 132)


# -- logprobs -------------------------------------------------------------------------------------

UNLIKELY = -9999.0  # OpenAI's logprob for a token too unlikely to have one


def scripted_logprob(token: str, top: int) -> dict[str, Any]:
    """The scripted model's entry for ``token``: certain, and ``top`` alternatives in all, itself first
    and then ``<|alt1|>``, ``<|alt2|>`` ..., very unlikely special tokens without bytes."""
    chosen = {"token": token, "logprob": 0.0, "bytes": list(token.encode())}
    alternatives = [{"token": f"<|alt{rank}|>", "logprob": UNLIKELY, "bytes": None} for rank in range(1, top)]
    return {**chosen, "top_logprobs": [chosen, *alternatives][:top]}


HELLO_TOKENS = ["You", " said", ":", " Hello", ",", " world", "!"]


@pytest.mark.backend("sqlite")
def test_logprobs_of_the_whole_answer(client: openai.OpenAI, http: httpx.Client) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=user("Hello, world!"), logprobs=True, top_logprobs=3
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.refusal is None
    assert logprobs.content is not None
    assert [entry.model_dump() for entry in logprobs.content] == [
        scripted_logprob(token, 3) for token in HELLO_TOKENS
    ]
    assert logprobs.content[3].top_logprobs[1].bytes is None  # the SDK takes null bytes

    # On the wire, exactly the spec's object; without top_logprobs, no alternatives.
    body = {"model": "gpt-4o", "messages": user("Hello, world!"), "logprobs": True}
    response = http.post(PATH, json=body)
    assert response.status_code == 200, response.text
    assert_spec_shape("CreateChatCompletionResponse", response.json())
    assert response.json()["choices"][0]["logprobs"] == {
        "content": [scripted_logprob(token, 0) for token in HELLO_TOKENS],
        "refusal": None,
    }


@pytest.mark.backend("sqlite")
def test_logprobs_false_or_absent_is_null(http: httpx.Client) -> None:
    for extra in ({}, {"logprobs": False}, {"logprobs": None}):
        response = http.post(PATH, json={"model": "gpt-4o", "messages": HI, **extra})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["logprobs"] is None
        _, chunks = raw_chunks(http, {"model": "gpt-4o", "messages": HI, **extra})
        assert all(chunk["choices"][0]["logprobs"] is None for chunk in chunks)


@pytest.mark.backend("sqlite")
def test_streamed_logprobs_come_with_their_delta(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=user("Hello, world!"), logprobs=True, top_logprobs=2, stream=True
    )
    chunks = list(stream)
    assert len(chunks) == 1 + len(HELLO_TOKENS) + 1
    role, *deltas, finish = (chunk.choices[0] for chunk in chunks)
    assert role.logprobs is not None
    assert (role.logprobs.content, role.logprobs.refusal) == ([], None)
    for choice, token in zip(deltas, HELLO_TOKENS, strict=True):
        assert choice.delta.content == token
        assert choice.logprobs is not None
        assert choice.logprobs.refusal is None
        assert [entry.model_dump() for entry in choice.logprobs.content or []] == [scripted_logprob(token, 2)]
    # As OpenAI's stream: the finish chunk carries none.
    assert (finish.finish_reason, finish.logprobs) == ("stop", None)


@pytest.mark.backend("sqlite")
def test_stream_helper_gathers_the_logprobs_of_the_whole_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="gpt-4o", messages=user("Hello, world!"), logprobs=True, top_logprobs=1
    )
    tokens: list[str] = []
    with client.chat.completions.stream(
        model="gpt-4o", messages=user("Hello, world!"), logprobs=True, top_logprobs=1
    ) as stream:
        for event in stream:
            if event.type == "logprobs.content.delta":
                tokens += [entry.token for entry in event.content]
        final = stream.get_final_completion()
    assert tokens == HELLO_TOKENS
    assert final.choices[0].logprobs == whole.choices[0].logprobs


@pytest.mark.backend("sqlite")
def test_raw_streamed_logprobs_match_the_spec(http: httpx.Client) -> None:
    body = {"model": "gpt-4o", "messages": HI, "logprobs": True, "top_logprobs": 1}
    _, chunks = raw_chunks(http, {**body, "stream_options": {"include_usage": True}})
    for chunk in chunks:
        assert_schema("CreateChatCompletionStreamResponse", chunk, spec=SPEC)
    assert [chunk["choices"][0]["logprobs"] if chunk["choices"] else "usage" for chunk in chunks] == [
        {"content": [], "refusal": None},
        *(
            {"content": [scripted_logprob(token, 1)], "refusal": None}
            for token in ["You", " said", ":", " hi"]
        ),
        None,
        "usage",
    ]


@pytest.mark.backend("sqlite")
def test_tool_calls_have_no_logprobs(client: openai.OpenAI, http: httpx.Client) -> None:
    messages = user(f"Let me check.\n{CALL_WEATHER}")
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        tools=TOOLS,  # type: ignore[arg-type]
        logprobs=True,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.logprobs is not None
    assert [entry.token for entry in choice.logprobs.content or []] == ["Let", " me", " check", "."]

    _, chunks = raw_chunks(http, {"model": "gpt-4o", "messages": messages, "tools": TOOLS, "logprobs": True})
    fragments = [c["choices"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    assert fragments
    assert all(fragment["logprobs"] == {"content": [], "refusal": None} for fragment in fragments)


@pytest.mark.backend("sqlite")
def test_logprobs_of_every_choice_and_of_a_cut_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=user("Hello, world!"), logprobs=True, n=2, max_tokens=2
    )
    for choice in completion.choices:
        assert (choice.message.content, choice.finish_reason) == ("You said", "length")
        assert choice.logprobs is not None
        assert [entry.token for entry in choice.logprobs.content or []] == ["You", " said"]


# -- errors ---------------------------------------------------------------------------------------

HI = user("hi")
BAD_REQUESTS: list[tuple[str, dict[str, Any], str | None, str]] = [
    # (id, body, param, a piece of the message)
    ("empty-messages", {"model": "gpt-4o", "messages": []}, "messages", "array too short"),
    (
        "unknown-role",
        {"model": "gpt-4o", "messages": [{"role": "wizard", "content": "hi"}]},
        "messages[0]",
        "wizard",
    ),
    ("missing-model", {"messages": HI}, "model", "Missing required parameter: 'model'."),
    ("missing-messages", {"model": "gpt-4o"}, "messages", "Missing required parameter: 'messages'."),
    ("empty-model", {"model": "", "messages": HI}, "model", "model"),
    ("temperature-3", {"model": "gpt-4o", "messages": HI, "temperature": 3}, "temperature", "2"),
    ("n-0", {"model": "gpt-4o", "messages": HI, "n": 0}, "n", "greater than or equal to 1"),
    ("n-129", {"model": "gpt-4o", "messages": HI, "n": 129}, "n", "128"),
    ("max-tokens-0", {"model": "gpt-4o", "messages": HI, "max_tokens": 0}, "max_tokens", "1"),
    ("presence-3", {"model": "gpt-4o", "messages": HI, "presence_penalty": 3}, "presence_penalty", "2"),
    (
        "stop-5",
        {"model": "gpt-4o", "messages": HI, "stop": ["a", "b", "c", "d", "e"]},
        "stop",
        "at most 4 stop sequences",
    ),
    (
        "stream-options-without-stream",
        {"model": "gpt-4o", "messages": HI, "stream_options": {"include_usage": True}},
        "stream_options",
        "only allowed when 'stream' is enabled",
    ),
    (
        "tool-choice-without-tools",
        {"model": "gpt-4o", "messages": HI, "tool_choice": "auto"},
        "tool_choice",
        "only allowed when 'tools' are specified",
    ),
    (
        "unknown-field",
        {"model": "gpt-4o", "messages": HI, "bogus": 1},
        "bogus",
        "Unrecognized request argument supplied: bogus",
    ),
    (
        "top-logprobs-without-logprobs",
        {"model": "gpt-4o", "messages": HI, "top_logprobs": 2},
        "top_logprobs",
        "'top_logprobs' is only allowed when 'logprobs' is true",
    ),
    (
        "top-logprobs-with-logprobs-false",
        {"model": "gpt-4o", "messages": HI, "logprobs": False, "top_logprobs": 0},
        "top_logprobs",
        "'top_logprobs' is only allowed when 'logprobs' is true",
    ),
    (
        "top-logprobs-21",
        {"model": "gpt-4o", "messages": HI, "logprobs": True, "top_logprobs": 21},
        "top_logprobs",
        "20",
    ),
    (
        "logit-bias",
        {"model": "gpt-4o", "messages": HI, "logit_bias": {"50256": -100}},
        "logit_bias",
        "The 'logit_bias' parameter is not supported by this server.",
    ),
    (
        "functions-and-tools",
        {
            "model": "gpt-4o",
            "messages": HI,
            "functions": [{"name": "get_weather", "parameters": {}}],
            "tools": [WEATHER_TOOL],
        },
        "functions",
        "'functions' and 'tools' cannot be used together",
    ),
    (
        "function-call-without-functions",
        {"model": "gpt-4o", "messages": HI, "function_call": "auto"},
        "function_call",
        "'function_call' is only allowed when 'functions' are specified",
    ),
    (
        "function-call-of-an-unknown-function",
        {
            "model": "gpt-4o",
            "messages": HI,
            "functions": [{"name": "get_weather"}],
            "function_call": {"name": "get_time"},
        },
        "function_call",
        "function 'get_time' is not one of the 'functions'",
    ),
    (
        "function-role-without-name",
        {"model": "gpt-4o", "messages": [{"role": "function", "content": "x"}]},
        "messages[0].name",
        "Missing required parameter",
    ),
    (
        "audio-modality",
        {"model": "gpt-4o", "messages": HI, "modalities": ["text", "audio"]},
        "modalities",
        "The 'modalities' parameter is not supported by this server.",
    ),
    (
        "audio",
        {"model": "gpt-4o", "messages": HI, "audio": {"voice": "alloy", "format": "wav"}},
        "audio",
        "The 'audio' parameter is not supported by this server.",
    ),
]


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize(
    ("body", "param", "message"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_request_is_400_naming_the_param(
    http: httpx.Client, body: dict[str, Any], param: str | None, message: str
) -> None:
    response = http.post(PATH, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] is None
    assert message in error["message"]

    # Streamed, the same check comes before any byte of the stream.
    if "stream_options" not in body:
        streamed = http.post(PATH, json={**body, "stream": True})
        assert streamed.status_code == 400
        assert error_of(streamed)["param"] == param


MISNAMED_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    # (id, body, the param that names the wrong field)
    ("tool-message-without-id", {"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ("user-message-without-content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    (
        "unknown-field-in-a-message",
        {"messages": [{"role": "system", "content": "x", "bogus": 1}]},
        "messages[0].bogus",
    ),
    (
        "tool-call-without-arguments",
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}],
                }
            ]
        },
        "messages[0].tool_calls[0].function.arguments",
    ),
    (
        "bad-function-name",
        {"messages": HI, "tools": [{"type": "function", "function": {"name": "no spaces"}}]},
        "tools[0].function.name",
    ),
    ("tool-without-function", {"messages": HI, "tools": [{"type": "function"}]}, "tools[0].function"),
    (
        "named-tool-choice-without-function",
        {"messages": HI, "tools": [WEATHER_TOOL], "tool_choice": {"type": "function"}},
        "tool_choice.function",
    ),
]


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize(
    ("body", "param"), [case[1:] for case in MISNAMED_PARAMS], ids=[case[0] for case in MISNAMED_PARAMS]
)
def test_validation_error_names_the_field(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    response = http.post(PATH, json={"model": "gpt-4o", **body})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


@pytest.mark.backend("sqlite")
def test_named_tool_choice_of_an_undefined_function_is_400(http: httpx.Client) -> None:
    response = http.post(
        PATH,
        json={
            "model": "gpt-4o",
            "messages": HI,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_stock_price"}},
        },
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"]) == ("invalid_request_error", "tool_choice")


@pytest.mark.backend("sqlite")
def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post(
        PATH, content=b'{"model": "gpt-4o", "messages": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)
    assert "could not parse the JSON body" in error["message"]


@pytest.mark.backend("sqlite")
def test_sdk_raises_bad_request_with_the_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("hi"), top_logprobs=2)
    assert caught.value.status_code == 400
    assert (caught.value.type, caught.value.param, caught.value.code) == (
        "invalid_request_error",
        "top_logprobs",
        None,
    )

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("hi"), extra_body={"bogus": True})
    assert caught.value.param == "bogus"

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[], stream=True)
    assert caught.value.param == "messages"


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize(
    "extra", [{"stop": ["a", "b", "c", "d", "e"]}, {"tool_choice": "auto"}], ids=["stop", "tool_choice"]
)
def test_validation_message_does_not_stutter(http: httpx.Client, extra: dict[str, Any]) -> None:
    response = http.post(PATH, json={"model": "gpt-4o", "messages": HI, **extra})
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert message.lower().count("invalid") == 1, message


@pytest.mark.backend("sqlite")
def test_model_failure_is_500_server_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("/fail boom"))
    assert caught.value.status_code == 500
    assert (caught.value.type, caught.value.param, caught.value.code) == (
        "server_error",
        None,
        "server_error",
    )
    assert error_body(caught.value)["message"] == "boom"

    # Streamed: the model fails before its first token, so the status line still says so.
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("/fail boom"), stream=True)
    assert caught.value.code == "server_error"


@pytest.mark.backend("sqlite")
def test_rate_limited_model_is_429(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("/fail rate_limit_exceeded slow"))
    assert caught.value.status_code == 429
    assert (caught.value.param, caught.value.code) == (None, "rate_limit_exceeded")
    assert error_body(caught.value)["message"] == "slow"

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o", messages=user("/fail rate_limit_exceeded slow"), stream=True
        )

    response = http.post(PATH, json={"model": "gpt-4o", "messages": user("/fail rate_limit_exceeded slow")})
    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limit_exceeded"


@pytest.mark.backend("sqlite")
def test_rate_limit_error_type_is_not_invalid_request(http: httpx.Client) -> None:
    response = http.post(PATH, json={"model": "gpt-4o", "messages": user("/fail rate_limit_exceeded slow")})
    assert response.status_code == 429
    assert error_of(response)["type"] in {"requests", "tokens", "rate_limit_exceeded"}


@pytest.mark.backend("sqlite")
def test_prompt_the_model_refuses_is_400_invalid_prompt(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("/fail invalid_prompt no thanks"))
    assert (caught.value.type, caught.value.param, caught.value.code) == (
        "invalid_request_error",
        None,
        "invalid_prompt",
    )
    assert error_body(caught.value)["message"] == "no thanks"


# -- robustness -----------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_client_that_leaves_a_stream_early_does_not_hurt_the_server(
    server: Server, client: openai.OpenAI
) -> None:
    log_start = len(server.log())
    long_text = " ".join(f"word{i}" for i in range(20_000))
    stream = client.chat.completions.create(model="gpt-4o", messages=user(long_text), stream=True)
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(received) == 5:
            break
    stream.close()
    assert "".join(c.choices[0].delta.content or "" for c in received) == "You said: word0"

    # The server goes on answering, streamed and not.
    completion = client.chat.completions.create(model="gpt-4o", messages=user("still there?"))
    assert completion.choices[0].message.content == "You said: still there?"
    again = list(client.chat.completions.create(model="gpt-4o", messages=user("and now?"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in again) == "You said: and now?"
    assert again[-1].choices[0].finish_reason == "stop"

    time.sleep(0.2)  # let the server log whatever the dropped connection made it log
    new_log = server.log()[log_start:]
    assert "Traceback" not in new_log, new_log
    assert " ERROR " not in new_log, new_log


# -- the pre-tools API (functions / function_call), as code of 2023 sends it ------------------------

WEATHER_FUNCTION: dict[str, Any] = WEATHER_TOOL["function"]


@pytest.mark.backend("sqlite")
def test_legacy_function_call_is_answered_as_function_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-3.5-turbo-0613",
        messages=user(f"/call get_weather {WEATHER_ARGS}"),
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == json.loads(WEATHER_ARGS)

    # Forced by name, even when the message asks for nothing.
    forced = client.chat.completions.create(
        model="gpt-3.5-turbo-0613",
        messages=user("hello"),
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
        function_call={"name": "get_weather"},
    )
    assert forced.choices[0].finish_reason == "function_call"
    assert forced.choices[0].message.function_call is not None
    assert forced.choices[0].message.function_call.name == "get_weather"

    # function_call "none": the model answers in text.
    plain = client.chat.completions.create(
        model="gpt-3.5-turbo-0613",
        messages=user(f"/call get_weather {WEATHER_ARGS}"),
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
        function_call="none",
    )
    assert plain.choices[0].finish_reason == "stop"
    assert plain.choices[0].message.function_call is None


@pytest.mark.backend("sqlite")
def test_legacy_function_call_streams_as_function_call_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-3.5-turbo-0613",
        messages=user(f"/call get_weather {WEATHER_ARGS}"),
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        assert not delta.tool_calls
        if delta.function_call is not None:
            name += delta.function_call.name or ""
            arguments += delta.function_call.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (name, finish) == ("get_weather", "function_call")
    assert json.loads(arguments) == json.loads(WEATHER_ARGS)


@pytest.mark.backend("sqlite")
def test_legacy_function_result_round_trip(client: openai.OpenAI) -> None:
    """The 2023 loop: the model's function_call goes back as an assistant message, the result as a
    "function" message, and the model answers with it."""
    completion = client.chat.completions.create(
        model="gpt-3.5-turbo-0613",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": WEATHER_ARGS},
            },
            {"role": "function", "name": "get_weather", "content": "Sunny, 22 C"},
        ],
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "get_weather returned Sunny, 22 C"

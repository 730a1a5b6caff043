"""Assistants CRUD through the official SDK, checked against the OpenAPI schema."""

from __future__ import annotations

import re

import openai
import pytest

from tests.openapi import assert_schema

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_create_returns_full_object_with_defaults(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", name="Math Tutor", instructions="Be terse.")
    assert re.fullmatch(r"asst_[A-Za-z0-9]{24}", assistant.id)
    others = {client.beta.assistants.create(model="gpt-4o").id for _ in range(3)}
    assert len(others | {assistant.id}) == 4
    assert assistant.object == "assistant"
    assert assistant.model == "gpt-4o"
    assert assistant.name == "Math Tutor"
    assert assistant.instructions == "Be terse."
    assert assistant.description is None
    assert assistant.tools == []
    assert assistant.metadata == {}
    assert assistant.temperature == 1.0
    assert assistant.top_p == 1.0
    assert assistant.response_format == "auto"
    assert assistant._request_id is not None
    assert assistant._request_id.startswith("req_")


def test_raw_shape_matches_spec(client: openai.OpenAI) -> None:
    raw = client.beta.assistants.with_raw_response.create(
        model="gpt-4o", tools=[WEATHER_TOOL, {"type": "code_interpreter"}], metadata={"k": "v"}
    )
    body = raw.http_response.json()
    assert_schema("AssistantObject", body)
    assert body["tool_resources"] == {}
    assert body["tools"][0] == WEATHER_TOOL
    assert body["tools"][1] == {"type": "code_interpreter"}


def test_everything_stored_is_returned(client: openai.OpenAI) -> None:
    # tool_resources must name a file and a vector store that exist.
    file = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    store = client.vector_stores.create(name="docs")
    created = client.beta.assistants.create(
        model="llama3",
        name="n",
        description="d",
        instructions="i",
        tools=[
            WEATHER_TOOL,
            {"type": "file_search", "file_search": {"max_num_results": 7}},
            {"type": "code_interpreter"},
        ],
        tool_resources={
            "code_interpreter": {"file_ids": [file.id]},
            "file_search": {"vector_store_ids": [store.id]},
        },
        metadata={"team": "blue"},
        temperature=0.3,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    fetched = client.beta.assistants.retrieve(created.id)
    assert fetched == created
    assert fetched.tools[1].type == "file_search"
    assert fetched.tools[1].file_search is not None
    assert fetched.tools[1].file_search.max_num_results == 7
    assert fetched.tool_resources is not None
    assert fetched.tool_resources.code_interpreter is not None
    assert fetched.tool_resources.code_interpreter.file_ids == [file.id]
    assert fetched.tool_resources.file_search is not None
    assert fetched.tool_resources.file_search.vector_store_ids == [store.id]
    assert fetched.temperature == pytest.approx(0.3)
    assert fetched.top_p == pytest.approx(0.9)
    assert fetched.response_format is not None
    assert fetched.response_format.type == "json_object"  # type: ignore[union-attr]


def test_json_schema_response_format_round_trips(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"]}
    assistant = client.beta.assistants.create(
        model="m",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    raw = client.beta.assistants.with_raw_response.retrieve(assistant.id).http_response.json()
    assert raw["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


def test_modify_changes_only_what_is_sent(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o", name="before", instructions="keep me", tools=[WEATHER_TOOL], metadata={"a": "1"}
    )
    modified = client.beta.assistants.update(assistant.id, name="after", metadata={"b": "2"})
    assert modified.name == "after"
    assert modified.instructions == "keep me"
    assert modified.metadata == {"b": "2"}
    assert [tool.type for tool in modified.tools] == ["function"]
    assert client.beta.assistants.retrieve(assistant.id) == modified

    cleared = client.beta.assistants.update(assistant.id, tools=[], name=None, model="other")
    assert cleared.tools == []
    assert cleared.name is None
    assert cleared.model == "other"
    assert cleared.instructions == "keep me"


def test_modify_with_empty_body_returns_the_assistant(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", name="same")
    assert client.beta.assistants.update(assistant.id) == assistant


def test_delete(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    deleted = client.beta.assistants.delete(assistant.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (assistant.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError) as info:
        client.beta.assistants.retrieve(assistant.id)
    assert info.value.body == {
        "message": f"No assistant found with id '{assistant.id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(assistant.id)


def test_unknown_ids_are_404_for_every_method(client: openai.OpenAI) -> None:
    for call in (
        lambda: client.beta.assistants.retrieve("asst_missing"),
        lambda: client.beta.assistants.update("asst_missing", name="x"),
        lambda: client.beta.assistants.delete("asst_missing"),
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.status_code == 404
        assert info.value.body == {
            "message": "No assistant found with id 'asst_missing'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_list_walks_every_assistant_once(client: openai.OpenAI) -> None:
    # Many assistants are created within the same second: the order must still be total and stable.
    tag = {"batch": openai.__version__ + "-" + str(id(client))}
    made = [client.beta.assistants.create(model="m", name=f"a{i}", metadata=tag).id for i in range(7)]
    newest_first = [a.id for a in client.beta.assistants.list(limit=2) if a.metadata == tag]
    assert newest_first == made[::-1]
    oldest_first = [a.id for a in client.beta.assistants.list(limit=3, order="asc") if a.metadata == tag]
    assert oldest_first == made

"""Threads through the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.openapi import assert_schema


def test_create_empty_thread(client: openai.OpenAI) -> None:
    raw = client.beta.threads.with_raw_response.create()
    body = raw.http_response.json()
    assert_schema("ThreadObject", body)
    assert body["id"].startswith("thread_")
    assert body["object"] == "thread"
    assert body["metadata"] == {}
    assert body["tool_resources"] == {}
    assert raw.http_response.headers["x-request-id"].startswith("req_")


def test_create_with_messages_keeps_their_order(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
            {"role": "user", "content": [{"type": "text", "text": "third"}], "metadata": {"n": "3"}},
        ],
        metadata={"course": "intro"},
    )
    assert thread.metadata == {"course": "intro"}
    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.content[0].text.value for m in messages.data] == ["first", "second", "third"]  # type: ignore[union-attr]
    assert [m.role for m in messages.data] == ["user", "assistant", "user"]
    assert messages.data[2].metadata == {"n": "3"}
    assert {m.thread_id for m in messages.data} == {thread.id}


def test_retrieve_modify_delete(client: openai.OpenAI) -> None:
    # tool_resources must name a file and a vector store that exist.
    file = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    store = client.vector_stores.create(name="docs")
    thread = client.beta.threads.create(
        metadata={"a": "1"}, tool_resources={"code_interpreter": {"file_ids": [file.id]}}
    )
    assert client.beta.threads.retrieve(thread.id) == thread

    modified = client.beta.threads.update(thread.id, metadata={"a": "2", "b": "3"})
    assert modified.metadata == {"a": "2", "b": "3"}
    assert modified.tool_resources is not None
    assert modified.tool_resources.code_interpreter is not None
    assert modified.tool_resources.code_interpreter.file_ids == [file.id]

    changed = client.beta.threads.update(
        thread.id, tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    assert changed.tool_resources is not None
    assert changed.tool_resources.file_search is not None
    assert changed.tool_resources.file_search.vector_store_ids == [store.id]
    assert changed.tool_resources.code_interpreter is None
    assert changed.metadata == {"a": "2", "b": "3"}

    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (thread.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.retrieve(thread.id)
    assert info.value.body["message"] == f"No thread found with id '{thread.id}'."  # type: ignore[index]


def test_delete_takes_the_messages_with_it(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
    message = client.beta.threads.messages.list(thread.id).data[0]
    client.beta.threads.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.delete(thread.id)

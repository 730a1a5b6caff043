"""Messages through the official SDK: content forms, attachments, pagination, run_id filter."""

from __future__ import annotations

import openai
import pytest

from tests.openapi import assert_schema


@pytest.fixture
def thread_id(client: openai.OpenAI) -> str:
    return client.beta.threads.create().id


def test_string_content_becomes_a_text_part(client: openai.OpenAI, thread_id: str) -> None:
    raw = client.beta.threads.messages.with_raw_response.create(thread_id, role="user", content="Hello?")
    body = raw.http_response.json()
    assert_schema("MessageObject", body)
    assert body["id"].startswith("msg_")
    assert body["object"] == "thread.message"
    assert body["thread_id"] == thread_id
    assert body["content"] == [{"type": "text", "text": {"value": "Hello?", "annotations": []}}]
    assert body["status"] == "completed"
    assert body["completed_at"] == body["created_at"]
    assert body["assistant_id"] is None
    assert body["run_id"] is None
    assert body["attachments"] == []
    assert body["metadata"] == {}
    assert body["incomplete_details"] is None
    assert body["incomplete_at"] is None


def test_content_parts_and_attachments(client: openai.OpenAI, thread_id: str) -> None:
    # An attachment must name a file that exists (what it does to the thread: test_tool_resources.py).
    doc = client.files.create(file=("doc.txt", b"A short document."), purpose="assistants")
    message = client.beta.threads.messages.create(
        thread_id,
        role="user",
        content=[
            {"type": "text", "text": "What is in these pictures?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "image_file", "image_file": {"file_id": "file-abc"}},
        ],
        attachments=[{"file_id": doc.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}],
    )
    raw = client.beta.threads.messages.with_raw_response.retrieve(message.id, thread_id=thread_id)
    body = raw.http_response.json()
    assert_schema("MessageObject", body)
    assert body["content"] == [
        {"type": "text", "text": {"value": "What is in these pictures?", "annotations": []}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_file", "image_file": {"file_id": "file-abc", "detail": "auto"}},
    ]
    assert body["attachments"] == [
        {"file_id": doc.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
    ]


def test_modify_metadata_and_delete(client: openai.OpenAI, thread_id: str) -> None:
    message = client.beta.threads.messages.create(thread_id, role="user", content="x", metadata={"a": "1"})
    modified = client.beta.threads.messages.update(message.id, thread_id=thread_id, metadata={"a": "2"})
    assert modified.metadata == {"a": "2"}
    assert modified.content == message.content
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id) == modified

    deleted = client.beta.threads.messages.delete(message.id, thread_id=thread_id)
    assert (deleted.id, deleted.object, deleted.deleted) == (message.id, "thread.message.deleted", True)
    assert client.beta.threads.messages.list(thread_id).data == []


def test_message_is_only_reachable_through_its_own_thread(client: openai.OpenAI, thread_id: str) -> None:
    message = client.beta.threads.messages.create(thread_id, role="user", content="mine")
    other = client.beta.threads.create().id
    for call in (
        lambda: client.beta.threads.messages.retrieve(message.id, thread_id=other),
        lambda: client.beta.threads.messages.update(message.id, thread_id=other, metadata={}),
        lambda: client.beta.threads.messages.delete(message.id, thread_id=other),
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.body["message"] == f"No message found with id '{message.id}'."  # type: ignore[index]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread_id).id == message.id


def test_unknown_thread_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.messages.create("thread_missing", role="user", content="x")
    assert info.value.body["message"] == "No thread found with id 'thread_missing'."  # type: ignore[index]


def test_run_id_filter(client: openai.OpenAI, thread_id: str) -> None:
    client.beta.threads.messages.create(thread_id, role="user", content="x")
    # Messages added by the user belong to no run: a run filter matches none of them.
    assert client.beta.threads.messages.list(thread_id, run_id="run_abc").data == []
    assert len(client.beta.threads.messages.list(thread_id).data) == 1

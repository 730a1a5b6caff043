"""The foundation's acceptance script, as a user would write it with nothing but the SDK."""

from __future__ import annotations

import openai
import pytest


def test_assistant_thread_three_messages_paging_metadata_delete(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor.",
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
    )
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "I need to solve 3x + 11 = 14."},
            {"role": "user", "content": "Can you help me?"},
        ]
    )
    third = client.beta.threads.messages.create(thread.id, role="user", content="Please show the steps.")

    oldest_first = list(client.beta.threads.messages.list(thread.id, limit=1, order="asc"))
    newest_first = list(client.beta.threads.messages.list(thread.id, limit=1, order="desc"))
    texts = [m.content[0].text.value for m in oldest_first]  # type: ignore[union-attr]
    assert texts == ["I need to solve 3x + 11 = 14.", "Can you help me?", "Please show the steps."]
    assert [m.id for m in newest_first] == [m.id for m in reversed(oldest_first)]
    assert newest_first[0].id == third.id

    assistant = client.beta.assistants.update(assistant.id, metadata={"course": "algebra"})
    thread = client.beta.threads.update(thread.id, metadata={"student": "42"})
    third = client.beta.threads.messages.update(third.id, thread_id=thread.id, metadata={"step": "3"})
    assert (assistant.metadata, thread.metadata, third.metadata) == (
        {"course": "algebra"},
        {"student": "42"},
        {"step": "3"},
    )

    assert client.beta.threads.messages.delete(third.id, thread_id=thread.id).deleted is True
    assert client.beta.threads.delete(thread.id).deleted is True
    assert client.beta.assistants.delete(assistant.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(assistant.id)

"""The same API through AsyncOpenAI, with concurrent calls."""

from __future__ import annotations

import asyncio

import openai
import pytest

pytestmark = pytest.mark.anyio


async def test_concurrent_threads_and_messages(aclient: openai.AsyncOpenAI) -> None:
    threads = await asyncio.gather(*(aclient.beta.threads.create() for _ in range(5)))
    await asyncio.gather(
        *(
            aclient.beta.threads.messages.create(thread.id, role="user", content=f"{thread.id}:{i}")
            for thread in threads
            for i in range(4)
        )
    )
    for thread in threads:
        texts = [
            m.content[0].text.value async for m in aclient.beta.threads.messages.list(thread.id, limit=1)
        ]  # type: ignore[union-attr]
        assert sorted(texts) == [f"{thread.id}:{i}" for i in range(4)]


async def test_async_assistant_lifecycle(aclient: openai.AsyncOpenAI) -> None:
    assistant = await aclient.beta.assistants.create(model="gpt-4o-mini", name="async")
    assert (await aclient.beta.assistants.retrieve(assistant.id)).name == "async"
    updated = await aclient.beta.assistants.update(assistant.id, instructions="hi")
    assert updated.instructions == "hi"
    assert (await aclient.beta.assistants.delete(assistant.id)).deleted is True
    with pytest.raises(openai.NotFoundError):
        await aclient.beta.assistants.retrieve(assistant.id)

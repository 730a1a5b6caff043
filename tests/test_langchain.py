"""LangChain's Assistants runnable against a live server, as LangChain users drive it.

``OpenAIAssistantRunnable`` left the ``langchain`` package in 1.0: it is in ``langchain-classic``
(``langchain_classic.agents.openai_assistant``), with ``AgentExecutor``; ``langchain-community`` has its
v2 subclass, ``OpenAIAssistantV2Runnable`` (tool_resources, attachments). docs/clients.md tells how to
point them at assistd.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import openai
import pytest

# Skipped, not failed, in a venv without LangChain (the pass with the 1.x SDK has none).
openai_assistant = pytest.importorskip(
    "langchain_classic.agents.openai_assistant.base", reason="langchain-classic is not installed"
)
langchain_agents = pytest.importorskip(
    "langchain_classic.agents", reason="langchain-classic is not installed"
)
langchain_tools = pytest.importorskip("langchain_core.tools", reason="langchain-core is not installed")

OpenAIAssistantRunnable = openai_assistant.OpenAIAssistantRunnable
OpenAIAssistantAction = openai_assistant.OpenAIAssistantAction
OpenAIAssistantFinish = openai_assistant.OpenAIAssistantFinish

# The client's side is under test; the store behind the server is the same for it.
pytestmark = pytest.mark.backend("sqlite")

# The runnable polls the run until it leaves queued/in_progress, every second by default.
CHECK_EVERY_MS = 20.0

WEATHER_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
MOONS = b"Zorblax has three moons: Ix, Ul and the small Pell. Its year lasts 412 days.\n"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


# The same function as a LangChain tool, which the runnable turns into the assistant's function tool.
WEATHER_TOOL = langchain_tools.tool(get_weather)


@pytest.fixture(scope="module", autouse=True)
def _no_tracing() -> Iterator[None]:
    # LangChain sends traces to LangSmith's servers when the environment turns tracing on; the tests
    # talk to the local server only. (LangSmith caches what it reads: set before the first run.)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LANGSMITH_TRACING", "false")
        patch.setenv("LANGCHAIN_TRACING_V2", "false")
        yield


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    return client


@pytest.fixture
def async_sdk(aclient: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    return aclient


def async_twin(sdk: openai.OpenAI) -> openai.AsyncOpenAI:
    """The async client a runnable is given beside ``sdk``. Left out, the runnable makes one with the
    sync client's API key but not its base URL: it would go to OPENAI_BASE_URL, or to OpenAI. The sync
    paths never use it (it opens no connection, so nothing needs closing)."""
    return openai.AsyncOpenAI(base_url=str(sdk.base_url), api_key=sdk.api_key, max_retries=0)


def runnable(sdk: openai.OpenAI, tools: list[Any], *, as_agent: bool) -> Any:
    """An assistant made through the runnable's own ``create_assistant``."""
    return OpenAIAssistantRunnable.create_assistant(
        name="LangChain tutor",
        instructions="You are a personal math tutor.",
        tools=tools,
        model="gpt-4o",
        client=sdk,
        async_client=async_twin(sdk),
        as_agent=as_agent,
        check_every_ms=CHECK_EVERY_MS,
    )


def texts(messages: list[Any]) -> list[str]:
    return [part.text.value for message in messages for part in message.content]


def test_runnable_replies_and_returns_tool_calls(sdk: openai.OpenAI) -> None:
    assistant = runnable(sdk, [WEATHER_FUNCTION], as_agent=False)
    stored = sdk.beta.assistants.retrieve(assistant.assistant_id)
    assert (stored.name, [t.function.name for t in stored.tools if t.type == "function"]) == (
        "LangChain tutor",
        ["get_weather"],
    )

    # A new thread and run (threads/runs with the message), polled; the run's messages come back.
    messages = assistant.invoke({"content": "What is 3 + 4?"})
    assert texts(messages) == ["You said: What is 3 + 4?"]
    assert [m.role for m in messages] == ["assistant"]

    # A run that calls a function: the pending calls come back.
    calls = assistant.invoke({"content": '/call get_weather {"city": "Paris"}'})
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Paris"})
    ]


def test_agent_submits_tool_outputs_then_goes_on_in_the_thread(sdk: openai.OpenAI) -> None:
    agent = runnable(sdk, [WEATHER_TOOL], as_agent=True)

    # The custom execution loop of LangChain's documentation, written out.
    actions = agent.invoke({"content": '/call get_weather {"city": "Paris"}'})
    assert [(type(a), a.tool, a.tool_input) for a in actions] == [
        (OpenAIAssistantAction, "get_weather", {"city": "Paris"})
    ]
    outputs = [{"tool_call_id": a.tool_call_id, "output": WEATHER_TOOL.invoke(a.tool_input)} for a in actions]
    finish = agent.invoke(
        {"tool_outputs": outputs, "run_id": actions[0].run_id, "thread_id": actions[0].thread_id}
    )
    assert isinstance(finish, OpenAIAssistantFinish)
    assert finish.return_values["output"] == "get_weather returned sunny in Paris"
    assert finish.return_values["attachments"] == []

    # The next message in the same thread: a message and a run of their own.
    follow_up = agent.invoke({"content": "Thanks!", "thread_id": finish.thread_id})
    assert isinstance(follow_up, OpenAIAssistantFinish)
    assert follow_up.return_values["output"] == "You said: Thanks!"
    assert follow_up.thread_id == finish.thread_id
    history = sdk.beta.threads.messages.list(finish.thread_id, order="asc")
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]


def test_agent_executor_runs_a_python_tool(sdk: openai.OpenAI) -> None:
    agent = runnable(sdk, [WEATHER_TOOL], as_agent=True)
    executor = langchain_agents.AgentExecutor(agent=agent, tools=[WEATHER_TOOL])

    result = executor.invoke({"content": '/call get_weather {"city": "Oslo"}'})

    # The executor ran the tool, and the runnable submitted its output (as intermediate_steps).
    assert result["output"] == "get_weather returned sunny in Oslo"
    run = sdk.beta.threads.runs.retrieve(result["run_id"], thread_id=result["thread_id"])
    assert run.status == "completed"
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]


async def async_agent(sdk: openai.OpenAI, async_sdk: openai.AsyncOpenAI) -> Any:
    # Both clients: the async path still checks a run's pending calls with the sync one.
    return await OpenAIAssistantRunnable.acreate_assistant(
        name="async tutor",
        instructions="You are a personal math tutor.",
        tools=[WEATHER_TOOL],
        model="gpt-4o",
        async_client=async_sdk,
        client=sdk,
        as_agent=True,
        check_every_ms=CHECK_EVERY_MS,
    )


@pytest.mark.anyio
async def test_async_agent_gets_actions_and_finishes_in_a_worker_thread(
    sdk: openai.OpenAI, async_sdk: openai.AsyncOpenAI
) -> None:
    agent = await async_agent(sdk, async_sdk)
    actions = await agent.ainvoke({"content": '/call get_weather {"city": "Rome"}'})
    assert [(a.tool, a.tool_input) for a in actions] == [("get_weather", {"city": "Rome"})]

    # A run that completes cannot end an ainvoke (a LangChain bug, docs/clients.md): invoke, off the loop.
    outputs = [{"tool_call_id": a.tool_call_id, "output": "rain"} for a in actions]
    finish = await anyio.to_thread.run_sync(
        agent.invoke,
        {"tool_outputs": outputs, "run_id": actions[0].run_id, "thread_id": actions[0].thread_id},
    )
    assert finish.return_values["output"] == "get_weather returned rain"


def test_community_v2_runnable_with_tool_resources(sdk: openai.OpenAI) -> None:
    community = pytest.importorskip(
        "langchain_community.agents.openai_assistant", reason="langchain-community is not installed"
    )
    store = sdk.vector_stores.create(name="LangChain notes")
    agent = community.OpenAIAssistantV2Runnable.create_assistant(
        name="v2 tutor",
        instructions="You are a personal math tutor.",
        tools=[WEATHER_TOOL, {"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        model="gpt-4o",
        model_kwargs={"temperature": 0.2},
        client=sdk,
        async_client=async_twin(sdk),
        as_agent=True,
        check_every_ms=CHECK_EVERY_MS,
    )
    stored = sdk.beta.assistants.retrieve(agent.assistant_id)
    assert stored.tool_resources is not None
    assert stored.tool_resources.file_search is not None
    assert stored.tool_resources.file_search.vector_store_ids == [store.id]
    assert stored.temperature == 0.2

    actions = agent.invoke({"content": '/call get_weather {"city": "Lima"}'})
    assert [(a.tool, a.tool_input) for a in actions] == [("get_weather", {"city": "Lima"})]
    outputs = [{"tool_call_id": a.tool_call_id, "output": WEATHER_TOOL.invoke(a.tool_input)} for a in actions]
    finish = agent.invoke(
        {"tool_outputs": outputs, "run_id": actions[0].run_id, "thread_id": actions[0].thread_id}
    )
    assert finish.return_values["output"] == "get_weather returned sunny in Lima"

    # A file attached to the message (the v2 runnable's attachments): it goes into the thread's store,
    # and the run searches it once it is indexed.
    file = sdk.files.create(file=("moons.txt", MOONS), purpose="assistants")
    answer = agent.invoke(
        {"content": "/search How many moons has Zorblax?", "thread_id": finish.thread_id},
        attachments=[{"file_id": file.id, "tools": [{"type": "file_search"}]}],
    )
    assert answer.return_values["output"].startswith('The files say: "Zorblax has three moons')
    assert answer.return_values["output"].endswith("【0:0†moons.txt】")

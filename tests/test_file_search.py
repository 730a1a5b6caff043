"""The file_search tool in runs: search steps, results, citations, streaming, through the official SDK.

The scripted model searches when a message line says ``/search QUERY`` or when ``tool_choice`` forces
file_search, then quotes the top result and cites it with its marker (docs/scripted-model.md). The
documents are about clearly different things, so a question's answer is in exactly one of them.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from typing import Any, Final

import openai
import pytest
from openai.types.beta import FileSearchToolParam
from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import FileSearchToolCall, RunStep
from openai.types.beta.threads.runs.file_search_tool_call import FileSearchResult

from tests.conftest import make_client
from tests.harness import Server
from tests.run_support import (
    DELTAS,
    SERVER_TOOL_THEN_ANSWER,
    RecordingHandler,
    function_tool,
    only_assistant_reply,
    text_of,
    time_limit,
    wait_for_run,
    wait_for_status,
)
from tests.test_vector_stores import (
    MATCH,
    MOONS_ANSWER,
    MOONS_QUESTION,
    PLANET_PDF,
    POLL_MS,
    RECIPE,
    TIMEOUT,
    WAIT,
    counts,
)

INCLUDE_CONTENT: Final = "step_details.tool_calls[*].file_search.results[*].content"
WEATHER_ARGS = '{"city": "Oslo"}'
MARKER = re.compile(r"【\d+:\d+†[^】]*】")
FILE_SEARCH: list[FileSearchToolParam] = [{"type": "file_search"}]


@pytest.fixture(scope="module")
def library(server: Server) -> tuple[str, dict[str, str]]:
    """A store with three documents of different types (txt, md, pdf), uploaded and indexed with the
    SDK's ``file_batches.upload_and_poll``; its id and the file ids by name. Made once per backend:
    embedding on the CPU is slow, and tests only read it."""
    with make_client(server, timeout=TIMEOUT) as sdk:
        store = sdk.vector_stores.create(name="library")
        with time_limit(WAIT, "file_batches.upload_and_poll"):
            batch = sdk.vector_stores.file_batches.upload_and_poll(
                store.id, files=[RECIPE, MATCH, PLANET_PDF], poll_interval_ms=POLL_MS
            )
        assert batch.file_counts.model_dump() == counts(completed=3)
        ids = {sdk.files.retrieve(f.id).filename: f.id for f in sdk.vector_stores.files.list(store.id)}
    return store.id, ids


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    return client.with_options(timeout=TIMEOUT)


def searching_assistant(sdk: openai.OpenAI, store_id: str, **kwargs: Any) -> str:
    assistant = sdk.beta.assistants.create(
        model="gpt-4o",
        tools=kwargs.pop("tools", FILE_SEARCH),
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
        **kwargs,
    )
    return assistant.id


def ask(sdk: openai.OpenAI, assistant_id: str, text: str, **run_options: Any) -> tuple[str, str]:
    """A thread with one user message and a run of it, polled to its end: (thread id, run id)."""
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = sdk.beta.threads.runs.create(thread.id, assistant_id=assistant_id, **run_options)
    final = wait_for_run(sdk, thread.id, run.id)
    assert final.status == "completed", final.last_error
    return thread.id, run.id


def search_step(sdk: openai.OpenAI, thread_id: str, run_id: str, **kwargs: Any) -> RunStep:
    steps = list(sdk.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc", **kwargs))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"], steps
    assert [step.status for step in steps] == ["completed", "completed"]
    return steps[0]


def search_call(step: RunStep) -> FileSearchToolCall:
    """The step's one file_search call."""
    assert step.step_details.type == "tool_calls", step
    calls = [call for call in step.step_details.tool_calls if isinstance(call, FileSearchToolCall)]
    assert len(calls) == 1, step.step_details
    return calls[0]


def results_of(step: RunStep) -> list[FileSearchResult]:
    results = search_call(step).file_search.results
    assert results is not None
    return results


def check_citation(message: Message, file_id: str) -> str:
    """The message's one citation points at its marker and names ``file_id``; the marker is returned."""
    part = message.content[0]
    assert part.type == "text"
    text = part.text
    assert len(text.annotations) == 1, text.annotations
    annotation = text.annotations[0]
    assert annotation.type == "file_citation"
    assert annotation.file_citation.file_id == file_id
    assert text.value[annotation.start_index : annotation.end_index] == annotation.text
    assert MARKER.fullmatch(annotation.text), annotation.text
    return annotation.text


@pytest.mark.pgvector
def test_search_step_results_and_citation(sdk: openai.OpenAI, library: tuple[str, dict[str, str]]) -> None:
    store_id, ids = library
    assistant_id = searching_assistant(sdk, store_id)
    thread_id, run_id = ask(sdk, assistant_id, f"/search {MOONS_QUESTION}")

    step = search_step(sdk, thread_id, run_id)
    call = search_call(step)
    assert call.id.startswith("call_")
    assert call.file_search.ranking_options is not None
    assert call.file_search.ranking_options.model_dump() == {
        "ranker": "default_2024_08_21",
        "score_threshold": 0.0,
    }
    results = results_of(step)
    assert [r.file_id for r in results][:1] == [ids["zorblax.pdf"]]
    assert results[0].file_name == "zorblax.pdf"
    assert set(r.file_id for r in results) <= set(ids.values())
    # Scores are cosine similarities; the order is the hybrid ranking's (docs/architecture.md).
    assert all(0 <= r.score <= 1 for r in results)
    # Without include[], results carry no text (the raw JSON has no "content" key at all).
    raw = sdk.beta.threads.runs.steps.with_raw_response.retrieve(step.id, thread_id=thread_id, run_id=run_id)
    raw_call = raw.http_response.json()["step_details"]["tool_calls"][0]
    assert set(raw_call) == {"id", "type", "file_search"}
    assert set(raw_call["file_search"]) == {"ranking_options", "results"}
    assert all(set(r) == {"file_id", "file_name", "score"} for r in raw_call["file_search"]["results"])
    assert step.usage is not None
    assert step.usage.total_tokens > 0

    # With include[], the same results carry their text.
    detailed = search_step(sdk, thread_id, run_id, include=[INCLUDE_CONTENT])
    top = results_of(detailed)[0]
    assert top.content is not None
    assert MOONS_ANSWER in (top.content[0].text or "")
    fetched = sdk.beta.threads.runs.steps.retrieve(
        step.id, thread_id=thread_id, run_id=run_id, include=[INCLUDE_CONTENT]
    )
    assert fetched == detailed

    reply = only_assistant_reply(sdk, thread_id, run_id)
    assert MOONS_ANSWER in text_of(reply)
    marker = check_citation(reply, ids["zorblax.pdf"])
    assert marker.endswith("†zorblax.pdf】")
    assert text_of(reply).endswith(marker)

    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.usage is not None
    assert run.usage.total_tokens > step.usage.total_tokens


def test_tool_choice_file_search_searches_the_question(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    assistant_id = searching_assistant(sdk, store_id)
    thread_id, run_id = ask(
        sdk, assistant_id, "Who won the football match on Saturday?", tool_choice={"type": "file_search"}
    )
    assert results_of(search_step(sdk, thread_id, run_id))[0].file_id == ids["match-report.md"]
    reply = only_assistant_reply(sdk, thread_id, run_id)
    assert "Riverside United" in text_of(reply)
    check_citation(reply, ids["match-report.md"])
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert not isinstance(run.tool_choice, str)
    assert run.tool_choice is not None
    assert run.tool_choice.type == "file_search"


def test_settings_of_the_tool_reach_the_step(sdk: openai.OpenAI, library: tuple[str, dict[str, str]]) -> None:
    store_id, ids = library
    tool: FileSearchToolParam = {
        "type": "file_search",
        "file_search": {"max_num_results": 1, "ranking_options": {"ranker": "auto", "score_threshold": 0.5}},
    }
    assistant_id = searching_assistant(sdk, store_id, tools=[tool])
    thread_id, run_id = ask(sdk, assistant_id, "/search How do I cook pancakes with lemon?")
    step = search_step(sdk, thread_id, run_id)
    ranking = search_call(step).file_search.ranking_options
    assert ranking is not None
    assert ranking.score_threshold == 0.5
    assert [r.file_id for r in results_of(step)] == [ids["lemon-pancakes.txt"]]

    # A threshold no chunk reaches: no results, and an answer that says so, with no citation.
    strict: FileSearchToolParam = {
        "type": "file_search",
        "file_search": {"ranking_options": {"score_threshold": 1.0}},
    }
    assistant_id = searching_assistant(sdk, store_id, tools=[strict])
    thread_id, run_id = ask(sdk, assistant_id, "/search How do I cook pancakes with lemon?")
    assert results_of(search_step(sdk, thread_id, run_id)) == []
    reply = only_assistant_reply(sdk, thread_id, run_id)
    assert text_of(reply) == "I found nothing about that in the files."
    assert reply.content[0].type == "text"
    assert reply.content[0].text.annotations == []


def test_thread_store_is_searched_and_a_run_without_stores_finds_nothing(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    bare = sdk.beta.assistants.create(model="gpt-4o", tools=FILE_SEARCH)
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": f"/search {MOONS_QUESTION}"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=bare.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    check_citation(only_assistant_reply(sdk, thread.id, run.id), ids["zorblax.pdf"])

    thread_id, run_id = ask(sdk, bare.id, f"/search {MOONS_QUESTION}")
    reply = only_assistant_reply(sdk, thread_id, run_id)
    assert text_of(reply) == "I found nothing about that in the files."


def test_without_the_tool_search_lines_are_plain_text(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, _ = library
    assistant_id = searching_assistant(sdk, store_id, tools=[function_tool("get_weather")])
    thread_id, run_id = ask(sdk, assistant_id, "/search moons")
    steps = list(sdk.beta.threads.runs.steps.list(run_id, thread_id=thread_id))
    assert [step.type for step in steps] == ["message_creation"]
    assert text_of(only_assistant_reply(sdk, thread_id, run_id)) == "You said: /search moons"


def test_search_beside_a_function_call_waits_for_the_function_only(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    assistant_id = searching_assistant(sdk, store_id, tools=[*FILE_SEARCH, function_tool("get_weather")])
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": f"/search {MOONS_QUESTION}\n/call get_weather {WEATHER_ARGS}"}]
    )
    run = sdk.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    waiting = wait_for_status(sdk, thread.id, run.id, "requires_action")
    assert waiting.required_action is not None
    [pending] = waiting.required_action.submit_tool_outputs.tool_calls
    assert (pending.type, pending.function.name) == ("function", "get_weather")

    [step] = list(sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
    assert step.status == "in_progress"
    assert step.step_details.type == "tool_calls"
    assert [call.type for call in step.step_details.tool_calls] == ["file_search", "function"]
    assert results_of(step)[0].file_id == ids["zorblax.pdf"]

    done = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": pending.id, "output": "sunny"}],
        poll_interval_ms=50,
    )
    assert done.status == "completed", done.last_error
    reply = only_assistant_reply(sdk, thread.id, run.id)
    lines = text_of(reply).splitlines()
    assert MOONS_ANSWER in lines[0]
    assert lines[1] == "get_weather returned sunny"
    check_citation(reply, ids["zorblax.pdf"])


def test_streamed_search_sends_each_annotation_once(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    assistant_id = searching_assistant(sdk, store_id)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": f"/search {MOONS_QUESTION}"}])
    handler = RecordingHandler()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler, include=[INCLUDE_CONTENT]
    ) as stream:
        stream.until_done()
        final_messages = stream.get_final_messages()
        final_steps = stream.get_final_run_steps()

    assert [name for name in handler.names if name not in DELTAS] == SERVER_TOOL_THEN_ANSWER
    assert handler.names.count("thread.run.step.delta") == 1  # the search starting
    step_delta = next(e for e in handler.events if e.event == "thread.run.step.delta")
    assert step_delta.event == "thread.run.step.delta"
    details = step_delta.data.delta.step_details
    assert details is not None
    assert details.type == "tool_calls"
    [fragment] = details.tool_calls or []
    assert fragment.type == "file_search"
    assert fragment.index == 0

    # The step that completed in the stream carries the results' text: the run was created with include[].
    search_done = next(e for e in handler.events if e.event == "thread.run.step.completed")
    assert search_done.event == "thread.run.step.completed"
    top = results_of(search_done.data)[0]
    assert top.file_id == ids["zorblax.pdf"]
    assert top.content is not None
    assert MOONS_ANSWER in (top.content[0].text or "")

    # Every annotation comes in exactly one delta, with the text that completes its marker.
    sent = [
        annotation
        for event in handler.events
        if event.event == "thread.message.delta"
        for part in event.data.delta.content or []
        if part.type == "text" and part.text is not None
        for annotation in part.text.annotations or []
    ]
    assert len(sent) == 1
    assert sent[0].index == 0
    [message] = final_messages
    marker = check_citation(message, ids["zorblax.pdf"])
    assert sent[0].text == marker
    assert "".join(handler.deltas) == text_of(message)
    assert handler.texts_done == [text_of(message)]
    assert [step.type for step in final_steps] == ["tool_calls", "message_creation"]


def test_stream_without_include_has_no_result_text(
    sdk: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    assistant_id = searching_assistant(sdk, store_id)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": f"/search {MOONS_QUESTION}"}])
    handler = RecordingHandler()
    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
    search_done = next(e for e in handler.events if e.event == "thread.run.step.completed")
    assert search_done.event == "thread.run.step.completed"
    results = results_of(search_done.data)
    assert results[0].file_id == ids["zorblax.pdf"]
    assert all(result.content is None for result in results)


@pytest.mark.anyio
async def test_async_client_gets_the_same_citation(
    aclient: openai.AsyncOpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = library
    assistant = await aclient.beta.assistants.create(
        model="gpt-4o", tools=FILE_SEARCH, tool_resources={"file_search": {"vector_store_ids": [store_id]}}
    )
    thread = await aclient.beta.threads.create(
        messages=[{"role": "user", "content": "/search Who won the football match on Saturday?"}]
    )
    run = await aclient.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    messages = await aclient.beta.threads.messages.list(thread.id, run_id=run.id)
    [reply] = messages.data
    check_citation(reply, ids["match-report.md"])


def test_a_file_attached_to_the_message_is_searched_once_indexed(sdk: openai.OpenAI) -> None:
    file = sdk.files.create(file=MATCH, purpose="assistants")
    assistant = sdk.beta.assistants.create(model="gpt-4o", tools=FILE_SEARCH)
    # The run starts at once; its search waits for the attachment to be indexed.
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {
                    "role": "user",
                    "content": "/search Who won the football match on Saturday?",
                    "attachments": [{"file_id": file.id, "tools": [{"type": "file_search"}]}],
                }
            ]
        },
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    thread = sdk.beta.threads.retrieve(run.thread_id)
    assert thread.tool_resources is not None
    assert thread.tool_resources.file_search is not None
    [store_id] = thread.tool_resources.file_search.vector_store_ids or []
    assert sdk.vector_stores.retrieve(store_id).file_counts.completed == 1
    reply = only_assistant_reply(sdk, run.thread_id, run.id)
    assert "Riverside United" in text_of(reply)
    check_citation(reply, file.id)


@pytest.mark.backend("sqlite")
def test_an_expired_store_fails_the_run_with_a_clear_error(server: Server, sdk: openai.OpenAI) -> None:
    file = sdk.files.create(file=RECIPE, purpose="assistants")
    store = sdk.vector_stores.create(
        file_ids=[file.id], expires_after={"anchor": "last_active_at", "days": 1}
    )
    assistant_id = searching_assistant(sdk, store.id)
    # Indexing moves the expiry when it completes the file: it must be done before the expiry is moved.
    with time_limit(WAIT, "indexing"):
        while sdk.vector_stores.retrieve(store.id).file_counts.in_progress:
            time.sleep(0.05)
    # A day cannot pass in a test: the store's expiry is moved into the past in the database itself.
    with closing(sqlite3.connect(server.data_dir / "assistd.db")) as db, db:
        db.execute("UPDATE vector_stores SET expires_at = ? WHERE id = ?", (int(time.time()) - 1, store.id))
    assert sdk.vector_stores.retrieve(store.id).status == "expired"

    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "/search pancakes"}])
    run = sdk.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    final = wait_for_run(sdk, thread.id, run.id)
    assert final.status == "failed"
    assert final.last_error is not None
    assert final.last_error.code == "invalid_prompt"
    assert final.last_error.message.startswith(f"Vector store {store.id} has expired.")


@pytest.mark.backend("sqlite")
def test_a_search_counts_as_activity_of_the_store(server: Server, sdk: openai.OpenAI) -> None:
    file = sdk.files.create(file=RECIPE, purpose="assistants")
    store = sdk.vector_stores.create(
        file_ids=[file.id], expires_after={"anchor": "last_active_at", "days": 2}
    )
    with time_limit(WAIT, "indexing"):
        while sdk.vector_stores.retrieve(store.id).file_counts.in_progress:
            time.sleep(0.05)
    an_hour_ago = int(time.time()) - 3600
    with closing(sqlite3.connect(server.data_dir / "assistd.db")) as db, db:
        db.execute("UPDATE vector_stores SET last_active_at = ? WHERE id = ?", (an_hour_ago, store.id))
    assert sdk.vector_stores.retrieve(store.id).last_active_at == an_hour_ago

    thread_id, run_id = ask(sdk, searching_assistant(sdk, store.id), "/search pancakes")
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    searched = sdk.vector_stores.retrieve(store.id)
    assert searched.last_active_at is not None
    assert searched.last_active_at >= run.created_at
    assert searched.expires_at == searched.last_active_at + 2 * 86400

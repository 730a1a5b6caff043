"""tool_resources and message attachments through the SDK: the vector store helper, the ids they name,
and the thread's vector store that file_search attachments go to.

Stores made here index small text files (one chunk each) in the background; every wait is bounded.
Tests on the shared server only look at the objects they made, or compare lists taken before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types import FileObject
from openai.types.beta import Thread

from tests.envelope import sdk_error
from tests.openapi import assert_schema
from tests.run_support import text_of, wait_for_run
from tests.test_vector_stores import TIMEOUT, all_store_ids, upload, wait_until

NOTES = b"The lighthouse on Gull Point was painted red and white in 1921.\n"
SMALL_CHUNKS: Any = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}
THREAD_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}
# Typed loosely: each SDK method has its own TypedDict for the same JSON.
FILE_SEARCH: Any = [{"type": "file_search"}]
CODE_INTERPRETER: Any = [{"type": "code_interpreter"}]


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    """The session's SDK client with a bounded timeout, so that a hang fails the test."""
    return client.with_options(timeout=TIMEOUT)


def new_file(sdk: openai.OpenAI, name: str = "notes.txt") -> FileObject:
    return upload(sdk, name, NOTES)


def indexed_files(sdk: openai.OpenAI, store_id: str) -> dict[str, str]:
    """The store's files and their status, once none is in progress any more."""
    files = wait_until(
        lambda: list(sdk.vector_stores.files.list(store_id)),
        lambda found: all(file.status != "in_progress" for file in found),
        f"indexing the files of {store_id}",
    )
    return {file.id: file.status for file in files}


def completed(*file_ids: str) -> dict[str, str]:
    return dict.fromkeys(file_ids, "completed")


def thread_resources(sdk: openai.OpenAI, thread_id: str) -> dict[str, Any]:
    """The thread's tool_resources as JSON, as a retrieve returns them."""
    raw = sdk.beta.threads.with_raw_response.retrieve(thread_id).http_response.json()
    assert_schema("ThreadObject", raw)
    return dict(raw["tool_resources"])


def only_store(resources: dict[str, Any]) -> str:
    [store_id] = resources["file_search"]["vector_store_ids"]
    assert isinstance(store_id, str)
    return store_id


def assistant_ids(sdk: openai.OpenAI) -> list[str]:
    return [assistant.id for assistant in sdk.beta.assistants.list(limit=100)]


@pytest.fixture
def assistant_id(sdk: openai.OpenAI) -> str:
    return sdk.beta.assistants.create(model="scripted").id


# -- the vector store helper -------------------------------------------------------------------------


def test_helper_on_assistant_create_makes_a_store_of_the_files(sdk: openai.OpenAI) -> None:
    first, second = new_file(sdk, "a.txt"), new_file(sdk, "b.txt")
    code = new_file(sdk, "data.txt")
    raw = sdk.beta.assistants.with_raw_response.create(
        model="scripted",
        tools=[{"type": "file_search"}, {"type": "code_interpreter"}],
        tool_resources={
            "code_interpreter": {"file_ids": [code.id]},
            "file_search": {
                "vector_stores": [
                    {
                        "file_ids": [first.id, second.id],
                        "chunking_strategy": SMALL_CHUNKS,
                        "metadata": {"made": "by the helper"},
                    }
                ]
            },
        },
    )
    body = raw.http_response.json()
    assert_schema("AssistantObject", body)
    store_id = only_store(body["tool_resources"])
    assert body["tool_resources"] == {
        "code_interpreter": {"file_ids": [code.id]},
        "file_search": {"vector_store_ids": [store_id]},
    }
    assert sdk.beta.assistants.retrieve(body["id"]) == raw.parse()

    store = sdk.vector_stores.retrieve(store_id)
    assert store.metadata == {"made": "by the helper"}
    # An assistant's store does not expire (OpenAI's helper stores of threads do).
    assert (store.expires_after, store.expires_at) == (None, None)
    assert indexed_files(sdk, store_id) == completed(first.id, second.id)
    for file in sdk.vector_stores.files.list(store_id):
        assert file.chunking_strategy is not None
        assert file.chunking_strategy.model_dump() == SMALL_CHUNKS


def test_helper_on_thread_create_makes_a_store_that_expires_after_a_week(sdk: openai.OpenAI) -> None:
    file = new_file(sdk)
    thread = sdk.beta.threads.create(
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [file.id]}]}}
    )
    resources = thread_resources(sdk, thread.id)
    store_id = only_store(resources)
    assert resources == {"file_search": {"vector_store_ids": [store_id]}}

    store = sdk.vector_stores.retrieve(store_id)
    assert store.expires_after is not None
    assert store.expires_after.model_dump() == THREAD_STORE_EXPIRY
    assert store.last_active_at is not None
    assert store.expires_at == store.last_active_at + 7 * 86400
    assert store.metadata == {}
    assert indexed_files(sdk, store_id) == completed(file.id)


def test_helper_without_files_makes_an_empty_store(sdk: openai.OpenAI) -> None:
    thread = sdk.beta.threads.create(tool_resources={"file_search": {"vector_stores": [{}]}})
    store_id = only_store(thread_resources(sdk, thread.id))
    assert sdk.vector_stores.retrieve(store_id).file_counts.total == 0


@pytest.mark.parametrize("where", ["thread", "top level"])
def test_helper_on_create_and_run(sdk: openai.OpenAI, assistant_id: str, where: str) -> None:
    file = new_file(sdk)
    resources: Any = {"file_search": {"vector_stores": [{"file_ids": [file.id]}]}}
    messages: Any = [{"role": "user", "content": "Hello"}]
    if where == "thread":
        run = sdk.beta.threads.create_and_run(
            assistant_id=assistant_id, thread={"messages": messages, "tool_resources": resources}
        )
    else:
        # The spec's top-level tool_resources has no helper; assistd takes it there too, as the thread's.
        run = sdk.beta.threads.create_and_run(
            assistant_id=assistant_id, thread={"messages": messages}, extra_body={"tool_resources": resources}
        )
    store_id = only_store(thread_resources(sdk, run.thread_id))
    assert sdk.vector_stores.retrieve(store_id).expires_after is not None
    assert indexed_files(sdk, store_id) == completed(file.id)
    assert wait_for_run(sdk, run.thread_id, run.id).status == "completed"


@pytest.mark.parametrize("target", ["assistant", "thread", "create_and_run"])
def test_vector_store_ids_and_the_helper_together_are_400(
    sdk: openai.OpenAI, assistant_id: str, target: str
) -> None:
    file = new_file(sdk)
    store = sdk.vector_stores.create(name="named")
    both: Any = {"file_search": {"vector_store_ids": [store.id], "vector_stores": [{"file_ids": [file.id]}]}}
    calls: dict[str, tuple[Callable[[], object], str]] = {
        "assistant": (
            lambda: sdk.beta.assistants.create(model="scripted", tool_resources=both),
            "tool_resources.file_search",
        ),
        "thread": (lambda: sdk.beta.threads.create(tool_resources=both), "tool_resources.file_search"),
        "create_and_run": (
            lambda: sdk.beta.threads.create_and_run(
                assistant_id=assistant_id, thread={"tool_resources": both}
            ),
            "thread.tool_resources.file_search",
        ),
    }
    call, param = calls[target]
    stores, assistants = all_store_ids(sdk), assistant_ids(sdk)
    error = sdk_error(call, 400, param)
    assert "vector_store_ids" in error["message"]
    assert "vector_stores" in error["message"]
    assert (all_store_ids(sdk), assistant_ids(sdk)) == (stores, assistants)


# -- ids that name nothing -----------------------------------------------------------------------------

# (name, request, param): each request names one thing that does not exist, next to things that do.
# ``good`` is a real file, ``store`` a real vector store, ``assistant`` a real assistant.
Refused = Callable[[openai.OpenAI, str, str, str], object]
CREATES: list[tuple[str, Refused, str]] = [
    (
        "assistant code_interpreter file",
        lambda s, good, store, _: s.beta.assistants.create(
            model="scripted", tool_resources={"code_interpreter": {"file_ids": [good, "file-nope"]}}
        ),
        "tool_resources.code_interpreter.file_ids[1]",
    ),
    (
        "assistant vector store",
        lambda s, good, store, _: s.beta.assistants.create(
            model="scripted", tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}}
        ),
        "tool_resources.file_search.vector_store_ids[0]",
    ),
    (
        "assistant helper file",
        lambda s, good, store, _: s.beta.assistants.create(
            model="scripted",
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [good, "file-nope"]}]}},
        ),
        "tool_resources.file_search.vector_stores[0].file_ids[1]",
    ),
    (
        "thread helper file",
        lambda s, good, store, _: s.beta.threads.create(
            tool_resources={"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}
        ),
        "tool_resources.file_search.vector_stores[0].file_ids[0]",
    ),
    (
        "thread vector store",
        lambda s, good, store, _: s.beta.threads.create(
            tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}}
        ),
        "tool_resources.file_search.vector_store_ids[0]",
    ),
    (
        # The helper's store would be made before the message is looked at: the one transaction drops it.
        "thread message attachment",
        lambda s, good, store, _: s.beta.threads.create(
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [good]}]}},
            messages=[
                {"role": "user", "content": "one", "attachments": [{"file_id": good, "tools": FILE_SEARCH}]},
                {
                    "role": "user",
                    "content": "two",
                    "attachments": [{"file_id": "file-nope", "tools": FILE_SEARCH}],
                },
            ],
        ),
        "messages[1].attachments[0].file_id",
    ),
    (
        "create_and_run thread helper file",
        lambda s, good, store, assistant: s.beta.threads.create_and_run(
            assistant_id=assistant,
            thread={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}},
        ),
        "thread.tool_resources.file_search.vector_stores[0].file_ids[0]",
    ),
    (
        "create_and_run top-level code_interpreter file",
        lambda s, good, store, assistant: s.beta.threads.create_and_run(
            assistant_id=assistant, tool_resources={"code_interpreter": {"file_ids": ["file-nope"]}}
        ),
        "tool_resources.code_interpreter.file_ids[0]",
    ),
    (
        "create_and_run message attachment",
        lambda s, good, store, assistant: s.beta.threads.create_and_run(
            assistant_id=assistant,
            thread={
                "tool_resources": {"file_search": {"vector_stores": [{"file_ids": [good]}]}},
                "messages": [
                    {"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": []}]}
                ],
            },
        ),
        "thread.messages[0].attachments[0].file_id",
    ),
]


@pytest.mark.parametrize(("call", "param"), [(c, p) for _, c, p in CREATES], ids=[n for n, _, _ in CREATES])
def test_unknown_ids_on_create_are_400_and_create_nothing(
    sdk: openai.OpenAI, assistant_id: str, call: Refused, param: str
) -> None:
    good, store = new_file(sdk), sdk.vector_stores.create(name="exists")
    stores, assistants = all_store_ids(sdk), assistant_ids(sdk)
    error = sdk_error(lambda: call(sdk, good.id, store.id, assistant_id), 400, param)
    assert "nope" in error["message"]
    # No assistant, and no vector store made by a helper or for attachments, was left behind (a thread
    # goes in the same transaction, but threads cannot be listed).
    assert (all_store_ids(sdk), assistant_ids(sdk)) == (stores, assistants)


def test_unknown_ids_on_modify_are_400_and_change_nothing(sdk: openai.OpenAI) -> None:
    good = new_file(sdk)
    assistant = sdk.beta.assistants.create(
        model="scripted", tool_resources={"code_interpreter": {"file_ids": [good.id]}}
    )
    sdk_error(
        lambda: sdk.beta.assistants.update(
            assistant.id, tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}}, name="changed"
        ),
        400,
        "tool_resources.file_search.vector_store_ids[0]",
    )
    assert sdk.beta.assistants.retrieve(assistant.id) == assistant

    thread = sdk.beta.threads.create(metadata={"kept": "yes"})
    sdk_error(
        lambda: sdk.beta.threads.update(
            thread.id, tool_resources={"code_interpreter": {"file_ids": [good.id, "file-nope"]}}, metadata={}
        ),
        400,
        "tool_resources.code_interpreter.file_ids[1]",
    )
    assert sdk.beta.threads.retrieve(thread.id) == thread

    # Modify takes ids only: the helper is a create's (the spec's ModifyThreadRequest has no such field).
    helper: Any = {"file_search": {"vector_stores": [{"file_ids": [good.id]}]}}
    sdk_error(
        lambda: sdk.beta.threads.update(thread.id, tool_resources=helper),
        400,
        "tool_resources.file_search.vector_stores",
    )
    assert sdk.beta.threads.retrieve(thread.id) == thread

    # Ids that exist are taken, and replace the old ones whole.
    store = sdk.vector_stores.create(name="for modify")
    changed = sdk.beta.threads.update(
        thread.id, tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    assert thread_resources(sdk, changed.id) == {"file_search": {"vector_store_ids": [store.id]}}


def test_unknown_attachment_of_a_new_message_is_400_and_adds_nothing(sdk: openai.OpenAI) -> None:
    good = new_file(sdk)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    stores = all_store_ids(sdk)
    sdk_error(
        lambda: sdk.beta.threads.messages.create(
            thread.id,
            role="user",
            content="second",
            attachments=[
                {"file_id": good.id, "tools": FILE_SEARCH},
                {"file_id": "file-nope", "tools": CODE_INTERPRETER},
            ],
        ),
        400,
        "attachments[1].file_id",
    )
    assert [text_of(m) for m in sdk.beta.threads.messages.list(thread.id)] == ["first"]
    assert thread_resources(sdk, thread.id) == {}
    assert all_store_ids(sdk) == stores


def test_unknown_attachment_of_an_additional_message_is_400_and_starts_no_run(
    sdk: openai.OpenAI, assistant_id: str
) -> None:
    thread = sdk.beta.threads.create()
    sdk_error(
        lambda: sdk.beta.threads.runs.create(
            thread.id,
            assistant_id=assistant_id,
            additional_messages=[
                {"role": "user", "content": "x"},
                {
                    "role": "user",
                    "content": "y",
                    "attachments": [{"file_id": "file-nope", "tools": FILE_SEARCH}],
                },
            ],
        ),
        400,
        "additional_messages[1].attachments[0].file_id",
    )
    assert list(sdk.beta.threads.runs.list(thread.id)) == []
    assert list(sdk.beta.threads.messages.list(thread.id)) == []


# -- attachments ---------------------------------------------------------------------------------------


def test_file_search_attachments_go_to_one_store_of_the_thread(sdk: openai.OpenAI) -> None:
    first, second = new_file(sdk, "first.txt"), new_file(sdk, "second.txt")
    thread = sdk.beta.threads.create()
    stores = all_store_ids(sdk)

    message = sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Read this",
        attachments=[{"file_id": first.id, "tools": FILE_SEARCH}],
    )
    assert [(a.file_id, [t.type for t in a.tools or []]) for a in message.attachments or []] == [
        (first.id, ["file_search"])
    ]
    resources = thread_resources(sdk, thread.id)
    store_id = only_store(resources)
    assert resources == {"file_search": {"vector_store_ids": [store_id]}}
    assert all_store_ids(sdk) == [store_id, *stores]  # the newest first: exactly one store was made
    store = sdk.vector_stores.retrieve(store_id)
    assert store.expires_after is not None
    assert store.expires_after.model_dump() == THREAD_STORE_EXPIRY
    assert indexed_files(sdk, store_id) == completed(first.id)

    # A second attachment goes to the same store; attaching a file again adds nothing.
    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="And this",
        attachments=[
            {"file_id": second.id, "tools": FILE_SEARCH},
            {"file_id": first.id, "tools": FILE_SEARCH},
        ],
    )
    assert thread_resources(sdk, thread.id) == resources
    assert all_store_ids(sdk) == [store_id, *stores]
    assert indexed_files(sdk, store_id) == completed(first.id, second.id)


def test_code_interpreter_attachments_join_the_threads_file_ids(sdk: openai.OpenAI) -> None:
    given, attached, both = (
        new_file(sdk, "given.csv"),
        new_file(sdk, "attached.csv"),
        new_file(sdk, "both.txt"),
    )
    thread = sdk.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [given.id]}})
    stores = all_store_ids(sdk)

    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Plot these",
        attachments=[
            {"file_id": attached.id, "tools": CODE_INTERPRETER},
            {"file_id": given.id, "tools": CODE_INTERPRETER},
            {"file_id": attached.id, "tools": []},
        ],
    )
    # Only code_interpreter files: no store is made.
    assert thread_resources(sdk, thread.id) == {"code_interpreter": {"file_ids": [given.id, attached.id]}}
    assert all_store_ids(sdk) == stores

    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Both tools",
        attachments=[{"file_id": both.id, "tools": [*CODE_INTERPRETER, *FILE_SEARCH]}],
    )
    resources = thread_resources(sdk, thread.id)
    store_id = only_store(resources)
    assert resources == {
        "code_interpreter": {"file_ids": [given.id, attached.id, both.id]},
        "file_search": {"vector_store_ids": [store_id]},
    }
    assert indexed_files(sdk, store_id) == completed(both.id)


def test_code_interpreter_files_of_a_thread_are_at_most_20(sdk: openai.OpenAI) -> None:
    files = [new_file(sdk, f"f{n}.csv").id for n in range(21)]
    thread = sdk.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": files[:19]}})
    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="20th",
        attachments=[{"file_id": files[19], "tools": CODE_INTERPRETER}],
    )
    error = sdk_error(
        lambda: sdk.beta.threads.messages.create(
            thread.id,
            role="user",
            content="21st",
            attachments=[
                {"file_id": files[0], "tools": CODE_INTERPRETER},
                {"file_id": files[20], "tools": CODE_INTERPRETER},
            ],
        ),
        400,
        "attachments[1]",
    )
    assert files[20] in error["message"]
    assert thread_resources(sdk, thread.id) == {"code_interpreter": {"file_ids": files[:20]}}
    assert len(list(sdk.beta.threads.messages.list(thread.id))) == 1


def test_attachments_of_a_new_thread_join_the_helpers_store(sdk: openai.OpenAI) -> None:
    helper_file, attached = new_file(sdk, "helper.txt"), new_file(sdk, "attached.txt")
    stores = all_store_ids(sdk)
    thread = sdk.beta.threads.create(
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [helper_file.id]}]}},
        messages=[
            {"role": "user", "content": "Hi"},
            {
                "role": "user",
                "content": "See",
                "attachments": [{"file_id": attached.id, "tools": FILE_SEARCH}],
            },
        ],
    )
    store_id = only_store(thread_resources(sdk, thread.id))
    assert all_store_ids(sdk) == [store_id, *stores]
    assert indexed_files(sdk, store_id) == completed(helper_file.id, attached.id)


def test_attachments_join_the_store_the_thread_names(sdk: openai.OpenAI) -> None:
    attached = new_file(sdk)
    store = sdk.vector_stores.create(name="the thread's")
    thread = sdk.beta.threads.create(
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        messages=[
            {
                "role": "user",
                "content": "See",
                "attachments": [{"file_id": attached.id, "tools": FILE_SEARCH}],
            }
        ],
    )
    assert thread_resources(sdk, thread.id) == {"file_search": {"vector_store_ids": [store.id]}}
    assert indexed_files(sdk, store.id) == completed(attached.id)


def test_a_deleted_store_of_the_thread_is_replaced(sdk: openai.OpenAI) -> None:
    first, second = new_file(sdk, "first.txt"), new_file(sdk, "second.txt")
    thread = sdk.beta.threads.create(
        messages=[
            {"role": "user", "content": "a", "attachments": [{"file_id": first.id, "tools": FILE_SEARCH}]}
        ]
    )
    old = only_store(thread_resources(sdk, thread.id))
    sdk.vector_stores.delete(old)
    sdk.beta.threads.messages.create(
        thread.id,
        role="user",
        content="b",
        attachments=[{"file_id": second.id, "tools": FILE_SEARCH}],
    )
    new = only_store(thread_resources(sdk, thread.id))
    assert new != old
    assert indexed_files(sdk, new) == completed(second.id)


def test_attachments_of_runs_go_to_the_threads_store(sdk: openai.OpenAI, assistant_id: str) -> None:
    first, second = new_file(sdk, "first.txt"), new_file(sdk, "second.txt")

    # create_and_run: the new thread's messages.
    started = sdk.beta.threads.create_and_run(
        assistant_id=assistant_id,
        thread={
            "messages": [
                {
                    "role": "user",
                    "content": "Read",
                    "attachments": [{"file_id": first.id, "tools": FILE_SEARCH}],
                }
            ]
        },
    )
    thread_id = started.thread_id
    store_id = only_store(thread_resources(sdk, thread_id))
    assert indexed_files(sdk, store_id) == completed(first.id)
    assert wait_for_run(sdk, thread_id, started.id).status == "completed"

    # runs.create: additional messages join the same store.
    run = sdk.beta.threads.runs.create(
        thread_id,
        assistant_id=assistant_id,
        additional_messages=[
            {"role": "user", "content": "More", "attachments": [{"file_id": second.id, "tools": FILE_SEARCH}]}
        ],
    )
    assert thread_resources(sdk, thread_id) == {"file_search": {"vector_store_ids": [store_id]}}
    assert indexed_files(sdk, store_id) == completed(first.id, second.id)
    assert wait_for_run(sdk, thread_id, run.id).status == "completed"


def test_thread_objects_show_the_store_at_once(sdk: openai.OpenAI) -> None:
    """The thread a create returns already names the store its attachments went to."""
    file = new_file(sdk)
    thread: Thread = sdk.beta.threads.create(
        messages=[
            {"role": "user", "content": "x", "attachments": [{"file_id": file.id, "tools": FILE_SEARCH}]}
        ]
    )
    assert thread.tool_resources is not None
    assert thread.tool_resources.file_search is not None
    assert thread.tool_resources.file_search.vector_store_ids == [
        only_store(thread_resources(sdk, thread.id))
    ]

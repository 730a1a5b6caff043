"""Bad input of every kind gets a clear 4xx in OpenAI's error envelope.

Every error body must be ``{"error": {"message", "type", "param", "code"}}`` with all four keys, name the
``param`` when there is one, and never be a 500, a hang or a partial write. The official SDK sends whatever
it can (``extra_body=`` for unknown fields, ``extra_headers=`` for headers, ``openai.omit`` for missing
fields); the raw ``http`` client only sends what the SDK cannot (malformed or non-UTF-8 bytes, unknown
routes, chunked or huge bodies).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.envelope import assert_error, sdk_error
from tests.harness import Server, backend_server

TIMEOUT = 30.0  # seconds: an answer that takes longer than this is a hang
JSON = {"content-type": "application/json"}
NOT_PARSED = "We could not parse the JSON body of your request"

Call = Callable[[openai.OpenAI, "Objects"], object]


# -- helpers -----------------------------------------------------------------------------------------


def bad_request(call: Callable[[], object]) -> dict[str, Any]:
    return sdk_error(call, 400)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Objects:
    assistant_id: str
    thread_id: str
    message_id: str


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    """The session's SDK client with a bounded timeout, so that a hang fails the test."""
    return client.with_options(timeout=TIMEOUT)


@pytest.fixture
def objs(sdk: openai.OpenAI) -> Objects:
    """One existing assistant, thread and message, each with known values, for modify/list paths."""
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="original", metadata={"keep": "me"})
    thread = sdk.beta.threads.create(metadata={"keep": "me"})
    message = sdk.beta.threads.messages.create(
        thread.id, role="user", content="hello", metadata={"keep": "me"}
    )
    return Objects(assistant.id, thread.id, message.id)


@pytest.fixture(scope="module")
def scratch_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server (and database) apart from the shared one, for input that would leave unreadable rows
    behind if the server stored it: a failure here cannot break the other tests. The tests using it
    store nothing when they pass, so they can share it."""
    with backend_server(backend, tmp_path_factory.mktemp("scratch")) as instance:
        yield instance


# Every route that takes a JSON body; path templates filled from `Objects`.
BODY_ROUTES = [
    "/v1/assistants",
    "/v1/assistants/{assistant_id}",
    "/v1/threads",
    "/v1/threads/{thread_id}",
    "/v1/threads/{thread_id}/messages",
    "/v1/threads/{thread_id}/messages/{message_id}",
]


def fill(path: str, objs: Objects) -> str:
    return path.format(**asdict(objs))


# -- body that is not a JSON object ------------------------------------------------------------------


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(
    "body",
    [b'{"model": ', b"{'model': 'm'}", b'{"model": "m",}', b"not json at all", b'{"metadata": {"k": "v"}'],
    ids=["truncated", "single-quotes", "trailing-comma", "garbage", "unclosed"],
)
def test_malformed_json_is_400(http: httpx.Client, objs: Objects, path: str, body: bytes) -> None:
    error = assert_error(http.post(fill(path, objs), content=body, headers=JSON), 400)
    assert error["message"].startswith(NOT_PARSED), error
    assert error["param"] is None


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"5", b"true", b"[]"])
def test_json_that_is_not_an_object_is_400(http: httpx.Client, objs: Objects, path: str, body: bytes) -> None:
    error = assert_error(http.post(fill(path, objs), content=body, headers=JSON), 400)
    assert "request body" in error["message"], error
    assert error["param"] is None


@pytest.mark.parametrize(
    ("path", "param"),
    [("/v1/assistants", "model"), ("/v1/threads/{thread_id}/messages", "role")],
)
@pytest.mark.parametrize("headers", [{}, JSON], ids=["no-content-type", "json-content-type"])
def test_empty_body_where_fields_are_required_is_400(
    http: httpx.Client, objs: Objects, path: str, param: str, headers: dict[str, str]
) -> None:
    error = assert_error(http.post(fill(path, objs), content=b"", headers=headers), 400)
    assert error["message"].startswith("Missing required parameter"), error
    assert error["param"] in (None, param)


@pytest.mark.parametrize("headers", [{}, JSON], ids=["no-content-type", "json-content-type"])
def test_empty_body_creates_an_empty_thread(http: httpx.Client, headers: dict[str, str]) -> None:
    response = http.post("/v1/threads", content=b"", headers=headers)
    assert response.status_code == 200, response.text
    thread = response.json()
    assert thread["object"] == "thread"
    assert thread["id"].startswith("thread_")
    assert thread["metadata"] == {}


# -- missing and wrongly typed fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param"),
    [
        pytest.param(lambda s, o: s.beta.assistants.create(model=openai.omit), "model", id="assistant-model"),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role=openai.omit, content="x"),
            "role",
            id="message-role",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role="user", content=openai.omit),
            "content",
            id="message-content",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.create(messages=[{"content": "x"}]),
            "messages[0].role",
            id="thread-message-role",
        ),
    ],
)
def test_missing_required_field_is_400_naming_it(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert error["message"] == f"Missing required parameter: '{param}'."


@pytest.mark.parametrize(
    ("call", "param", "fragment"),
    [
        pytest.param(
            lambda s, o: s.beta.assistants.create(model=5), "model", "Invalid type for 'model'", id="model=5"
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", name=[]),
            "name",
            "Invalid type for 'name'",
            id="name=[]",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", metadata="x"),
            "metadata",
            "Invalid type for 'metadata'",
            id="metadata=str",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", tools={}),
            "tools",
            "Invalid type for 'tools'",
            id="tools={}",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", temperature="hot"),
            "temperature",
            "valid number",
            id="temperature=hot",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, top_p="high"),
            "top_p",
            "valid number",
            id="modify-top_p=high",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, tools=[{"type": "magic"}]),
            "tools[0]",
            "'magic'",
            id="modify-tool-type",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", response_format=5),
            "response_format",
            "'response_format'",
            id="response_format=5",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.create(messages="x"),
            "messages",
            "Invalid type for 'messages'",
            id="thread-messages=str",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.update(o.thread_id, metadata=[]),
            "metadata",
            "Invalid type for 'metadata'",
            id="thread-modify-metadata=[]",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role="user", content=5),
            "content",
            "Invalid type for 'content'",
            id="content=5",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role="system", content="x"),
            "role",
            "'user' or 'assistant'",
            id="role=system",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update(o.message_id, thread_id=o.thread_id, metadata="x"),
            "metadata",
            "Invalid type for 'metadata'",
            id="message-modify-metadata=str",
        ),
    ],
)
def test_wrong_type_is_400_naming_the_param(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str, fragment: str
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert fragment in error["message"], error


# -- unknown fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param"),
    [
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", extra_body={"foo": 1}),
            "foo",
            id="assistant-create",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, extra_body={"file_ids": ["file-1"]}),
            "file_ids",
            id="assistant-modify-v1-file_ids",
        ),
        pytest.param(lambda s, o: s.beta.threads.create(extra_body={"foo": 1}), "foo", id="thread-create"),
        pytest.param(
            lambda s, o: s.beta.threads.update(o.thread_id, extra_body={"messages": []}),
            "messages",
            id="thread-modify",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content="x", extra_body={"file_ids": ["file-1"]}
            ),
            "file_ids",
            id="message-create-v1-file_ids",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update(
                o.message_id, thread_id=o.thread_id, extra_body={"content": "edited"}
            ),
            "content",
            id="message-modify-content",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(
                model="m", tools=[{"type": "function", "function": {"name": "f", "bogus": 1}}]
            ),
            "tools[0].function.bogus",
            id="nested-in-tool",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.create(messages=[{"role": "user", "content": "x", "bogus": 1}]),
            "messages[0].bogus",
            id="nested-in-thread-message",
        ),
    ],
)
def test_unknown_field_is_400_unrecognized_argument(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert error["message"] == f"Unrecognized request argument supplied: {param}"


# -- limits ------------------------------------------------------------------------------------------


def _function(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


@pytest.mark.parametrize(
    ("call", "param", "fragments"),
    [
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", name="n" * 257),
            "name",
            ["maximum length 256", "length 257"],
            id="name-257",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, name="n" * 257),
            "name",
            ["maximum length 256", "length 257"],
            id="modify-name-257",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", description="d" * 513),
            "description",
            ["maximum length 512", "length 513"],
            id="description-513",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", instructions="i" * 256_001),
            "instructions",
            ["maximum length 256000", "length 256001"],
            id="instructions-256001",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}] * 129),
            "tools",
            ["maximum length 128", "length 129"],
            id="tools-129",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", temperature=3),
            "temperature",
            ["less than or equal to 2"],
            id="temperature-3",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, temperature=-0.1),
            "temperature",
            ["greater than or equal to 0"],
            id="modify-temperature-negative",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", top_p=-1),
            "top_p",
            ["greater than or equal to 0"],
            id="top_p-negative",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", top_p=1.5),
            "top_p",
            ["less than or equal to 1"],
            id="top_p-1.5",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", tools=[_function("get weather")]),
            "tools[0].function.name",
            ["pattern"],
            id="function-name-space",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update(
                o.assistant_id, tools=[_function("ok"), _function("f" * 65)]
            ),
            "tools[1].function.name",
            ["maximum length 64", "length 65"],
            id="function-name-65",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(
                model="m", tools=[{"type": "file_search", "file_search": {"max_num_results": 51}}]
            ),
            "tools[0].file_search.max_num_results",
            ["less than or equal to 50"],
            id="max_num_results-51",
        ),
    ],
)
def test_over_limit_is_400_naming_the_param(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str, fragments: list[str]
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert f"'{param}'" in error["message"], error
    for fragment in fragments:
        assert fragment in error["message"], error


def test_values_exactly_at_the_limits_are_accepted(sdk: openai.OpenAI) -> None:
    # The other side of the limit tests: one more character, item or step would be refused.
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    assistant = sdk.beta.assistants.create(
        model="m",
        name="n" * 256,
        description="d" * 512,
        instructions="i" * 256_000,
        tools=[_function("f" * 64), *[{"type": "code_interpreter"}] * 127],
        temperature=2,
        top_p=0,
        metadata=metadata,
    )
    assert (len(assistant.name or ""), len(assistant.description or ""), len(assistant.tools)) == (
        256,
        512,
        128,
    )
    assert assistant.metadata == metadata
    assert (assistant.temperature, assistant.top_p) == (2, 0)
    thread = sdk.beta.threads.create(metadata=metadata)
    assert thread.metadata == metadata
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="x", metadata=metadata)
    assert message.metadata == metadata


# -- metadata ----------------------------------------------------------------------------------------

BAD_METADATA = [
    pytest.param({f"k{i}": "v" for i in range(17)}, "metadata", "at most 16", id="17-pairs"),
    pytest.param({"k" * 65: "v"}, "metadata", "maximum length 64", id="key-65"),
    pytest.param({"k": "v" * 513}, "metadata", "maximum length 512", id="value-513"),
    pytest.param({"k": 5}, "metadata.k", "valid string", id="value-not-a-string"),
]

METADATA_OPS = [
    pytest.param(lambda s, o, m: s.beta.assistants.create(model="m", metadata=m), "", id="assistant-create"),
    pytest.param(
        lambda s, o, m: s.beta.assistants.update(o.assistant_id, metadata=m), "", id="assistant-modify"
    ),
    pytest.param(lambda s, o, m: s.beta.threads.create(metadata=m), "", id="thread-create"),
    pytest.param(lambda s, o, m: s.beta.threads.update(o.thread_id, metadata=m), "", id="thread-modify"),
    pytest.param(
        lambda s, o, m: s.beta.threads.messages.create(o.thread_id, role="user", content="x", metadata=m),
        "",
        id="message-create",
    ),
    pytest.param(
        lambda s, o, m: s.beta.threads.messages.update(o.message_id, thread_id=o.thread_id, metadata=m),
        "",
        id="message-modify",
    ),
    pytest.param(
        lambda s, o, m: s.beta.threads.create(messages=[{"role": "user", "content": "x", "metadata": m}]),
        "messages[0].",
        id="thread-create-message",
    ),
]


@pytest.mark.parametrize(("op", "prefix"), METADATA_OPS)
@pytest.mark.parametrize(("metadata", "param", "fragment"), BAD_METADATA)
def test_bad_metadata_is_400(
    sdk: openai.OpenAI,
    objs: Objects,
    op: Callable[[openai.OpenAI, Objects, Any], object],
    prefix: str,
    metadata: dict[str, Any],
    param: str,
    fragment: str,
) -> None:
    error = bad_request(lambda: op(sdk, objs, metadata))
    assert error["param"] == prefix + param
    assert fragment in error["message"], error


# -- message content ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param", "fragment"),
    [
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role="user", content=[]),
            "content",
            "array too short",
            id="empty-list",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.create(messages=[{"role": "user", "content": []}]),
            "messages[0].content",
            "array too short",
            id="thread-create-empty-list",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content=[{"type": "video", "video": {"url": "x"}}]
            ),
            "content[0]",
            "'video'",
            id="unknown-part-type",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content=[{"type": "image_file", "image_file": {}}]
            ),
            "content[0].image_file.file_id",
            "Missing required parameter",
            id="image_file-without-file_id",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id,
                role="user",
                content=[
                    {"type": "text", "text": "ok"},
                    {"type": "image_file", "image_file": {"file_id": ""}},
                ],
            ),
            "content[1].image_file.file_id",
            "'content[1].image_file.file_id'",
            id="image_file-empty-file_id",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content="x", attachments=[{"tools": [{"type": "code_interpreter"}]}]
            ),
            "attachments[0].file_id",
            "Missing required parameter",
            id="attachment-without-file_id",
        ),
    ],
)
def test_bad_message_content_is_400(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str, fragment: str
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert fragment in error["message"], error


# -- query parameters --------------------------------------------------------------------------------

LISTS = [
    pytest.param(lambda s, o, q: s.beta.assistants.list(**q), id="assistants"),
    pytest.param(lambda s, o, q: s.beta.threads.messages.list(o.thread_id, **q), id="messages"),
]


@pytest.mark.parametrize("lister", LISTS)
@pytest.mark.parametrize(
    ("query", "param", "fragment"),
    [
        pytest.param({"limit": 0}, "limit", "greater than or equal to 1", id="limit=0"),
        pytest.param({"limit": 101}, "limit", "less than or equal to 100", id="limit=101"),
        pytest.param({"limit": "abc"}, "limit", "valid integer", id="limit=abc"),
        pytest.param({"order": "sideways"}, "order", "'asc' or 'desc'", id="order=sideways"),
    ],
)
def test_bad_list_query_is_400(
    sdk: openai.OpenAI,
    objs: Objects,
    lister: Callable[[openai.OpenAI, Objects, dict[str, Any]], object],
    query: dict[str, Any],
    param: str,
    fragment: str,
) -> None:
    error = bad_request(lambda: lister(sdk, objs, query))
    assert error["param"] == param
    assert f"'{param}'" in error["message"], error
    assert fragment in error["message"], error


@pytest.mark.parametrize("cursor", ["after", "before"])
@pytest.mark.parametrize(
    ("lister", "foreign"),
    [
        pytest.param(lambda s, o, q: s.beta.assistants.list(**q), "message_id", id="assistants"),
        pytest.param(
            lambda s, o, q: s.beta.threads.messages.list(o.thread_id, **q), "assistant_id", id="messages"
        ),
    ],
)
@pytest.mark.parametrize("which", ["made-up", "id-of-another-list"])
def test_unknown_cursor_is_400_naming_it(
    sdk: openai.OpenAI,
    objs: Objects,
    lister: Callable[[openai.OpenAI, Objects, dict[str, Any]], object],
    foreign: str,
    cursor: str,
    which: str,
) -> None:
    object_id = "obj_doesnotexist" if which == "made-up" else getattr(objs, foreign)
    error = bad_request(lambda: lister(sdk, objs, {cursor: object_id}))
    assert error["param"] == cursor
    assert f"'{cursor}'" in error["message"], error
    assert object_id in error["message"], error


# -- unknown ids -------------------------------------------------------------------------------------

MISSING_ASSISTANT = "No assistant found with id 'asst_missing'."
MISSING_THREAD = "No thread found with id 'thread_missing'."
MISSING_MESSAGE = "No message found with id 'msg_missing'."


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda s, o: s.beta.assistants.retrieve("asst_missing"), MISSING_ASSISTANT, id="asst-get"
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.update("asst_missing", name="x"),
            MISSING_ASSISTANT,
            id="asst-modify",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.delete("asst_missing"), MISSING_ASSISTANT, id="asst-delete"
        ),
        pytest.param(lambda s, o: s.beta.threads.retrieve("thread_missing"), MISSING_THREAD, id="thread-get"),
        pytest.param(
            lambda s, o: s.beta.threads.update("thread_missing", metadata={"a": "b"}),
            MISSING_THREAD,
            id="thread-modify",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.update("thread_missing"), MISSING_THREAD, id="thread-modify-empty"
        ),
        pytest.param(
            lambda s, o: s.beta.threads.delete("thread_missing"), MISSING_THREAD, id="thread-delete"
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create("thread_missing", role="user", content="x"),
            MISSING_THREAD,
            id="msg-create-in-missing-thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.list("thread_missing"),
            MISSING_THREAD,
            id="msg-list-missing-thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.retrieve(o.message_id, thread_id="thread_missing"),
            MISSING_THREAD,
            id="msg-get-missing-thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update(
                o.message_id, thread_id="thread_missing", metadata={}
            ),
            MISSING_THREAD,
            id="msg-modify-missing-thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.delete(o.message_id, thread_id="thread_missing"),
            MISSING_THREAD,
            id="msg-delete-missing-thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.retrieve("msg_missing", thread_id=o.thread_id),
            MISSING_MESSAGE,
            id="msg-get",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update("msg_missing", thread_id=o.thread_id, metadata={}),
            MISSING_MESSAGE,
            id="msg-modify",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.delete("msg_missing", thread_id=o.thread_id),
            MISSING_MESSAGE,
            id="msg-delete",
        ),
    ],
)
def test_unknown_id_is_404(sdk: openai.OpenAI, objs: Objects, call: Call, message: str) -> None:
    error = sdk_error(lambda: call(sdk, objs), 404)
    assert error == {"message": message, "type": "invalid_request_error", "param": None, "code": None}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s, o, t: s.beta.threads.messages.retrieve(o.message_id, thread_id=t), id="get"),
        pytest.param(
            lambda s, o, t: s.beta.threads.messages.update(
                o.message_id, thread_id=t, metadata={"stolen": "1"}
            ),
            id="modify",
        ),
        pytest.param(lambda s, o, t: s.beta.threads.messages.delete(o.message_id, thread_id=t), id="delete"),
    ],
)
def test_message_through_another_threads_path_is_404(
    sdk: openai.OpenAI, objs: Objects, call: Callable[[openai.OpenAI, Objects, str], object]
) -> None:
    other = sdk.beta.threads.create()
    error = sdk_error(lambda: call(sdk, objs, other.id), 404)
    assert error == {
        "message": f"No message found with id '{objs.message_id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    # ... and the message is untouched, where it belongs.
    message = sdk.beta.threads.messages.retrieve(objs.message_id, thread_id=objs.thread_id)
    assert message.metadata == {"keep": "me"}
    assert sdk.beta.threads.messages.list(other.id).data == []


# -- size, depth and encoding ------------------------------------------------------------------------

LIMIT = 2048


def _chunked_assistant(instructions_length: int) -> Iterator[bytes]:
    """A create-assistant body sent in 256-byte pieces, without Content-Length."""
    yield b'{"model": "m", "instructions": "'
    remaining = instructions_length
    while remaining > 0:
        piece = min(256, remaining)
        yield b"x" * piece
        remaining -= piece
    yield b'"}'


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_body_over_the_limit_is_413(start_server: Callable[..., Server], transfer: str) -> None:
    small = start_server(ASSISTD_MAX_BODY_BYTES=str(LIMIT))
    with (
        openai.OpenAI(base_url=f"{small.url}/v1", api_key="sk-test", max_retries=0, timeout=TIMEOUT) as sdk,
        httpx.Client(base_url=small.url, timeout=TIMEOUT) as raw,
    ):

        def create(instructions_length: int) -> httpx.Response:
            if transfer == "chunked":
                response = raw.post(
                    "/v1/assistants", content=_chunked_assistant(instructions_length), headers=JSON
                )
                assert response.request.headers.get("transfer-encoding") == "chunked"
                assert "content-length" not in response.request.headers
                return response
            raw_response = sdk.beta.assistants.with_raw_response.create(
                model="m", instructions="x" * instructions_length
            )
            return raw_response.http_response

        # Just under the limit: accepted, so the size alone is what is refused below.
        assert create(LIMIT - 200).status_code == 200

        if transfer == "chunked":
            error = assert_error(create(LIMIT + 1000), 413)
        else:
            error = sdk_error(
                lambda: sdk.beta.assistants.create(model="m", instructions="x" * (LIMIT + 1000)), 413
            )
        assert "too large" in error["message"], error
        assert str(LIMIT) in error["message"], error
        # A much larger one too (the chunked one is refused while it streams in).
        assert_error(
            raw.post("/v1/assistants", content=_chunked_assistant(200_000), headers=JSON)
            if transfer == "chunked"
            else raw.post("/v1/assistants", json={"model": "m", "instructions": "x" * 200_000}),
            413,
        )

        # Nothing of the refused bodies was stored, and the server still serves.
        assert len(sdk.beta.assistants.list(limit=100).data) == 1
        assert raw.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/v1/assistants", b'{"model": "m", "metadata": '),
        ("/v1/assistants/{assistant_id}", b'{"tools": '),
        ("/v1/threads", b'{"metadata": '),
        ("/v1/threads/{thread_id}/messages", b'{"role": "user", "content": '),
    ],
)
def test_deeply_nested_json_is_400_and_the_server_lives_on(
    http: httpx.Client, sdk: openai.OpenAI, objs: Objects, path: str, prefix: bytes
) -> None:
    depth = 100_000
    body = prefix + b"[" * depth + b"]" * depth + b"}"
    response = http.post(fill(path, objs), content=body, headers=JSON, timeout=TIMEOUT)
    error = assert_error(response, 400)
    assert error["message"].startswith(NOT_PARSED), error
    assert error["param"] is None

    assert http.get("/health").json() == {"status": "ok"}
    assert sdk.beta.assistants.retrieve(objs.assistant_id).name == "original"


@pytest.mark.parametrize("depth", [300, 900])
@pytest.mark.parametrize(
    ("call", "param"),
    [
        pytest.param(
            lambda s, o, v: s.beta.assistants.create(
                model="m", tools=[{"type": "function", "function": {"name": "f", "parameters": v}}]
            ),
            "tools[0].function.parameters",
            id="function-parameters",
        ),
        pytest.param(
            lambda s, o, v: s.beta.assistants.update(
                o.assistant_id, tools=[{"type": "function", "function": {"name": "f", "parameters": v}}]
            ),
            "tools[0].function.parameters",
            id="modify-function-parameters",
        ),
        pytest.param(
            lambda s, o, v: s.beta.assistants.create(
                model="m", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": v}}
            ),
            "response_format.json_schema.schema",
            id="json_schema-schema",
        ),
    ],
)
def test_deeply_nested_free_form_json_is_400_not_500(
    sdk: openai.OpenAI,
    objs: Objects,
    call: Callable[[openai.OpenAI, Objects, Any], object],
    param: str,
    depth: int,
) -> None:
    # Parseable JSON (Python's parser takes ~1000 levels), nested too deeply to store and serve back.
    error = bad_request(lambda: call(sdk, objs, nested(depth)))
    # The param is the path to where the nesting passes the limit, inside the named field.
    assert error["param"].startswith(param + "."), error
    assert "nest" in error["message"].lower(), error
    assert sdk.beta.assistants.retrieve(objs.assistant_id).tools == []


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "name": "\xff\xfe"}',
        b'{"metadata": {"k": "caf\xe9"}}',  # latin-1, not UTF-8
        b'{"role": "user", "content": "\xc3"}',  # truncated sequence
    ],
    ids=["ff-fe", "latin-1", "truncated"],
)
def test_invalid_utf8_is_400(http: httpx.Client, objs: Objects, path: str, body: bytes) -> None:
    error = assert_error(http.post(fill(path, objs), content=body, headers=JSON), 400)
    assert error["message"].startswith(NOT_PARSED), error
    assert error["param"] is None


# A lone UTF-16 surrogate is valid JSON escape syntax (`"\ud800"`) but no Unicode text: it cannot be
# encoded as UTF-8, so it can be neither stored nor sent back. The SDK cannot send one (it fails to encode).
LONE = b'"a\\ud800b"'


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        pytest.param("/v1/assistants", b'{"model": "m", "name": ' + LONE + b"}", "name", id="name"),
        pytest.param(
            "/v1/assistants",
            b'{"model": "m", "metadata": {"k": ' + LONE + b"}}",
            "metadata.k",
            id="metadata-value",
        ),
        pytest.param(
            "/v1/assistants",
            b'{"model": "m", "metadata": {' + LONE + b': "v"}}',
            "metadata",
            id="metadata-key",
        ),
        pytest.param(
            "/v1/assistants",
            b'{"model": "m", "tools": [{"type": "function", "function": {"name": "f", "description": '
            + LONE
            + b"}}]}",
            "tools[0].function.description",
            id="function-description",
        ),
        pytest.param(
            "/v1/assistants",
            b'{"model": "m", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": '
            + LONE
            + b"}}}]}",
            "tools[0].function.parameters.x",
            id="function-parameters",
        ),
        pytest.param(
            "/v1/threads/{thread_id}/messages",
            b'{"role": "user", "content": ' + LONE + b"}",
            "content",
            id="message-content",
        ),
        pytest.param(
            "/v1/threads/{thread_id}/messages",
            b'{"role": "user", "content": [{"type": "text", "text": ' + LONE + b"}]}",
            "content[0].text",
            id="message-text-part",
        ),
        pytest.param(
            "/v1/threads",
            b'{"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": ' + LONE + b"}]}",
            "messages[1].content",
            id="thread-create-message",
        ),
    ],
)
def test_lone_surrogate_escape_is_400_and_stores_nothing(
    scratch_server: Server, path: str, body: bytes, param: str
) -> None:
    with httpx.Client(base_url=scratch_server.url, timeout=TIMEOUT) as raw:
        thread_id = raw.post("/v1/threads").json()["id"]
        url = path.format(thread_id=thread_id)
        error = assert_error(raw.post(url, content=body, headers=JSON), 400)
        assert error["param"] == param
        assert f"'{param}'" in error["message"], error

        # Nothing was stored, and every list still reads.
        assistants = raw.get("/v1/assistants")
        assert assistants.status_code == 200, assistants.text
        assert assistants.json()["data"] == []
        messages = raw.get(f"/v1/threads/{thread_id}/messages")
        assert messages.status_code == 200, messages.text
        assert messages.json()["data"] == []


# -- NUL characters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param"),
    [
        pytest.param(lambda s, o: s.beta.assistants.create(model="m", name="a\x00b"), "name", id="name"),
        pytest.param(lambda s, o: s.beta.assistants.create(model="m\x00"), "model", id="model"),
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, instructions="\x00"),
            "instructions",
            id="modify-instructions",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", metadata={"k": "v\x00"}),
            "metadata.k",
            id="metadata-value",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", metadata={"k\x00": "v"}),
            "metadata",
            id="metadata-key",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(
                model="m",
                tools=[
                    {"type": "code_interpreter"},
                    {"type": "function", "function": {"name": "f", "description": "bad\x00"}},
                ],
            ),
            "tools[1].function.description",
            id="function-description",
        ),
        pytest.param(
            lambda s, o: s.beta.assistants.create(
                model="m",
                tools=[
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"properties": {"x": {"enum": ["\x00"]}}}},
                    }
                ],
            ),
            "tools[0].function.parameters.properties.x.enum[0]",
            id="function-parameters",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.update(o.thread_id, metadata={"k": "\x00"}),
            "metadata.k",
            id="thread-modify-metadata",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.create(
                messages=[{"role": "user", "content": "ok"}, {"role": "user", "content": "x\x00"}]
            ),
            "messages[1].content",
            id="thread-create-message",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(o.thread_id, role="user", content="x\x00"),
            "content",
            id="message-content",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content=[{"type": "text", "text": "\x00"}]
            ),
            "content[0].text",
            id="message-text-part",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update(
                o.message_id, thread_id=o.thread_id, metadata={"k": "\x00"}
            ),
            "metadata.k",
            id="message-modify-metadata",
        ),
    ],
)
def test_nul_character_in_body_is_400_naming_the_path(
    sdk: openai.OpenAI, objs: Objects, call: Call, param: str
) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == param
    assert f"'{param}'" in error["message"], error
    assert "NUL characters (\\u0000) are not allowed" in error["message"], error


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param("GET", "/v1/assistants/asst_%00x", None, "assistant", id="asst-get"),
        pytest.param("POST", "/v1/assistants/asst_%00x", {"name": "n"}, "assistant", id="asst-modify"),
        pytest.param("DELETE", "/v1/assistants/asst_%00x", None, "assistant", id="asst-delete"),
        pytest.param("GET", "/v1/threads/thread_%00x", None, "thread", id="thread-get"),
        pytest.param("DELETE", "/v1/threads/thread_%00x", None, "thread", id="thread-delete"),
        pytest.param(
            "POST",
            "/v1/threads/thread_%00x/messages",
            {"role": "user", "content": "x"},
            "thread",
            id="msg-create",
        ),
        pytest.param("GET", "/v1/threads/{thread_id}/messages/msg_%00x", None, "message", id="msg-get"),
    ],
)
def test_nul_character_in_path_ids_is_404(
    http: httpx.Client, objs: Objects, method: str, path: str, body: Any, expected: str
) -> None:
    # Raw HTTP: the 1.x SDK (httpx) refuses to send a NUL in a path; a client may still send %00.
    # PostgreSQL cannot even compare with a string holding NUL: such an id must not reach it.
    response = http.request(method, fill(path, objs), json=body, timeout=TIMEOUT)
    error = assert_error(response, 404)
    prefix = path.rsplit("/", 1)[-1].split("%00")[0] if expected != "thread" else "thread_"
    assert error["message"] == f"No {expected} found with id '{prefix}\x00x'."
    assert error["param"] is None


@pytest.mark.parametrize(
    ("call", "param"),
    [
        pytest.param(lambda s, o: s.beta.assistants.list(after="asst_\x00"), "after", id="assistants-after"),
        pytest.param(
            lambda s, o: s.beta.threads.messages.list(o.thread_id, before="msg_\x00"),
            "before",
            id="messages-before",
        ),
    ],
)
def test_nul_character_in_cursors_is_400(sdk: openai.OpenAI, objs: Objects, call: Call, param: str) -> None:
    error = sdk_error(lambda: call(sdk, objs), 400)
    assert f"'{param}'" in error["message"], error
    assert error["param"] == param


def test_nul_character_in_run_id_filter_is_an_empty_list(sdk: openai.OpenAI, objs: Objects) -> None:
    page = sdk.beta.threads.messages.list(objs.thread_id, run_id="run_\x00")
    assert page.data == []
    assert [m.id for m in sdk.beta.threads.messages.list(objs.thread_id).data] == [objs.message_id]


# -- OpenAI-Beta header ------------------------------------------------------------------------------

V1 = {"OpenAI-Beta": "assistants=v1"}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s, o: s.beta.assistants.list(extra_headers=V1), id="assistants-list"),
        pytest.param(
            lambda s, o: s.beta.assistants.create(model="m", name="v1", extra_headers=V1), id="asst-create"
        ),
        pytest.param(lambda s, o: s.beta.threads.retrieve(o.thread_id, extra_headers=V1), id="thread-get"),
        pytest.param(
            lambda s, o: s.beta.threads.messages.create(
                o.thread_id, role="user", content="v1", extra_headers=V1
            ),
            id="msg-create",
        ),
    ],
)
def test_assistants_v1_header_is_400_naming_v2(sdk: openai.OpenAI, objs: Objects, call: Call) -> None:
    error = bad_request(lambda: call(sdk, objs))
    assert error["param"] == "OpenAI-Beta"
    assert "assistants=v2" in error["message"], error
    assert "assistants=v1" in error["message"], error
    # Refused before anything happened.
    assert [m.id for m in sdk.beta.threads.messages.list(objs.thread_id).data] == [objs.message_id]


@pytest.mark.parametrize("beta", ["assistants=v2", None], ids=["v2", "absent"])
def test_v2_header_or_none_is_accepted(server: Server, beta: str | None) -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.headers.get("openai-beta"))

    header = {"OpenAI-Beta": beta if beta is not None else openai.omit}
    with (
        httpx.Client(event_hooks={"request": [record]}) as transport,
        openai.OpenAI(
            base_url=f"{server.url}/v1",
            api_key="sk-test",
            max_retries=0,
            timeout=TIMEOUT,
            http_client=transport,
        ) as sdk,
    ):
        assistant = sdk.beta.assistants.create(model="m", extra_headers=header)
        thread = sdk.beta.threads.create(extra_headers=header)
        sdk.beta.threads.messages.create(thread.id, role="user", content="hi", extra_headers=header)
        listed = sdk.beta.threads.messages.list(thread.id, extra_headers=header)
        assert sdk.beta.assistants.retrieve(assistant.id, extra_headers=header).id == assistant.id
    assert [m.content[0].text.value for m in listed.data] == ["hi"]  # type: ignore[union-attr]
    assert seen == [beta] * 5


# -- routes and methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/assistant"),
        ("GET", "/v1/assistants/asst_x/extra"),
        ("GET", "/v2/assistants"),
        ("GET", "/assistants"),
        ("GET", "/v1/threads/thread_x/messages/msg_x/files"),
    ],
)
def test_unknown_route_is_404_envelope(http: httpx.Client, method: str, path: str) -> None:
    error = assert_error(http.request(method, path), 404)
    assert error == {
        "message": f"Invalid URL ({method} {path})",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/assistants"),
        ("DELETE", "/v1/assistants"),
        ("GET", "/v1/threads"),
        ("PATCH", "/v1/assistants/asst_x"),
        ("PUT", "/v1/threads/thread_x/messages"),
        ("PATCH", "/v1/threads/thread_x/messages/msg_x"),
    ],
)
def test_wrong_method_is_405_envelope(http: httpx.Client, method: str, path: str) -> None:
    error = assert_error(http.request(method, path), 405)
    assert method in error["message"], error
    assert path in error["message"], error
    assert error["param"] is None


# -- no partial writes -------------------------------------------------------------------------------


def _count_rows(server: Server) -> tuple[int, int]:
    database = server.data_dir / "assistd.db"
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        threads = db.execute("SELECT count(*) FROM threads").fetchone()[0]
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    return int(threads), int(messages)


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize(
    ("third", "param"),
    [
        pytest.param({"role": "user", "content": []}, "messages[2].content", id="empty-content"),
        pytest.param({"role": "user", "content": "x\x00"}, "messages[2].content", id="nul"),
        pytest.param(
            {"role": "user", "content": [{"type": "video"}]}, "messages[2].content[0]", id="unknown-part"
        ),
        pytest.param({"role": "system", "content": "x"}, "messages[2].role", id="role-system"),
        pytest.param(
            {"role": "user", "content": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
            "messages[2].metadata",
            id="metadata-17",
        ),
    ],
)
def test_thread_with_one_invalid_message_writes_nothing(
    sdk: openai.OpenAI, server: Server, third: dict[str, Any], param: str
) -> None:
    first_two: list[Any] = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    before = _count_rows(server)
    # The counting sees writes: a valid thread of three messages adds one thread and three messages.
    sdk.beta.threads.create(messages=[*first_two, {"role": "user", "content": "three"}])
    after_valid = _count_rows(server)
    assert after_valid == (before[0] + 1, before[1] + 3)

    error = bad_request(lambda: sdk.beta.threads.create(messages=[*first_two, third], metadata={"a": "b"}))
    assert error["param"] == param
    assert _count_rows(server) == after_valid


@pytest.mark.parametrize(
    ("call", "check"),
    [
        pytest.param(
            lambda s, o: s.beta.assistants.update(o.assistant_id, name="changed", temperature=3),
            lambda s, o: s.beta.assistants.retrieve(o.assistant_id).name == "original",
            id="assistant",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.update(o.thread_id, metadata={"a": "b", "k": 5}),
            lambda s, o: s.beta.threads.retrieve(o.thread_id).metadata == {"keep": "me"},
            id="thread",
        ),
        pytest.param(
            lambda s, o: s.beta.threads.messages.update(
                o.message_id, thread_id=o.thread_id, metadata={f"k{i}": "v" for i in range(17)}
            ),
            lambda s, o: (
                s.beta.threads.messages.retrieve(o.message_id, thread_id=o.thread_id).metadata
                == {"keep": "me"}
            ),
            id="message",
        ),
    ],
)
def test_invalid_modify_changes_nothing(
    sdk: openai.OpenAI, objs: Objects, call: Call, check: Callable[[openai.OpenAI, Objects], bool]
) -> None:
    assert check(sdk, objs)
    bad_request(lambda: call(sdk, objs))
    assert check(sdk, objs)

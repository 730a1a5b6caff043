"""Fuzzing: OpenAI's reference drives the requests, plus hostile input a fuzzer would not think of.

Two halves, against live servers of their own (the harness's defaults: a fresh data dir, the
scripted model):

* ``test_assistants_api`` and ``test_chat_api``: schemathesis generates requests for every operation
  of tests/reference/ (valid ones, and invalid ones: wrong types, missing fields, values out of
  range, unexpected methods) and checks every answer: never a 5xx; a documented status (200) has the
  reference's schema; anything else is a 4xx in OpenAI's error envelope; a stream is well-formed SSE
  whose events match the reference. Half of the generated path ids (and ``assistant_id``s) are
  swapped for those of real objects, so that requests get past the 404 to the code behind it.
  The server is SQLite's; after the run it must still be up, and its log free of errors.
* targeted tests, for what schemathesis does not generate: path traversal in uploaded file names,
  NUL characters, oversized metadata, 10,000 levels of nesting, invalid UTF-8, SQL-looking text in
  every string field, cursor and query parameter. These run on every store backend.

A bug the generated half finds gets a targeted test of its own (the end of this file holds those found
so far, fixed). While one is open, mark that test ``xfail(strict=True)`` and step around the bug in
``checks_for``, so that it does not hide the others; the fix then shows as an XPASS that fails until
the mark goes.

Time: the generated half is deterministic (the same cases on every run) and bounded: at most
``EXAMPLES`` generated cases per operation (``ASSISTD_TEST_FUZZ_EXAMPLES`` to explore more locally),
plus schemathesis' coverage cases (boundary values and one-mutation-at-a-time invalid requests, a
fixed set per operation), with a deadline per case that only a hang reaches.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.envelope import assert_envelope
from tests.harness import Server, backend_server
from tests.openapi import REFERENCE, schema_errors

# A venv without the dev extra (the old SDK line's client venv) skips this file: it tests the server,
# which the other client lines see the same.
pytest.importorskip("schemathesis", reason="the fuzzer comes with the dev extra")

import hypothesis
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

TIMEOUT = 15.0  # seconds for one request: an answer that takes longer is a hang
EXAMPLES = int(os.environ.get("ASSISTD_TEST_FUZZ_EXAMPLES", "8"))
SQL = ["' OR 1=1 --", '"; DROP TABLE runs; --']
JSON = {"content-type": "application/json"}


# -- the reference, as the fuzzer reads it ---------------------------------------------------------


def _nullable(schema: dict[str, Any], field: str) -> None:
    schema["properties"][field] = {"anyOf": [schema["properties"][field], {"type": "null"}]}


def _reference(name: str) -> dict[str, Any]:
    """The vendored reference, where it contradicts what OpenAI sends (and assistd sends on purpose)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, 7x faster, where there is one
    document: dict[str, Any] = yaml.load((REFERENCE / name).read_text(), Loader=loader)
    schemas = document["components"]["schemas"]
    for key, schema in schemas.items():
        # An empty page has null first_id and last_id (OpenAI's; tests/test_pagination.py pins it).
        if key.startswith("List") and key.endswith("Response"):
            for field in ("first_id", "last_id"):
                if field in schema.get("properties", {}):
                    _nullable(schema, field)
    if "OpenAIFile" in schemas:
        file = schemas["OpenAIFile"]
        # Sent as null rather than left out (tests/test_files.py, spec_view).
        _nullable(file, "expires_at")
        _nullable(file, "status_details")
        # CreateFileRequest takes "evals"; the response's enum lags behind.
        file["properties"]["purpose"]["enum"].append("evals")
    return document


CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",  # valid requests and invalid ones
            "max-examples": EXAMPLES,
            "deterministic": True,  # the same cases on every run: a failure is reproducible
            "database": "none",  # nothing is remembered between runs
            # Open mode: a missing or odd Authorization header is accepted, by design.
            "with-security-parameters": False,
            # A string with NUL is refused (400) before anything else is looked at, which would hide
            # the rest of the request; NUL gets targeted tests below instead.
            "allow-x00": False,
        },
        "phases": {
            "examples": {"enabled": True},  # the reference's own example values, where it has some
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},  # the reference declares no links; real ids are swapped in
        },
        # Streams are read to their end (schemathesis stops after 20 events by default).
        "max-stream-events": 100_000,
        # Big request schemas (runs, chat) are slow to draw from; that is not the server's fault.
        "suppress-health-check": ["too_slow", "data_too_large", "filter_too_much", "large_base_example"],
    }
)

assistants_schema = schemathesis.openapi.from_dict(_reference("assistants-v2.yaml"), config=CONFIG)
chat_schema = schemathesis.openapi.from_dict(_reference("chat-completions.yaml"), config=CONFIG)


# -- checks ----------------------------------------------------------------------------------------


def _content_type(response: Response) -> str:
    return (response.headers.get("content-type") or [""])[0]


def documented_or_error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A status the reference documents for the operation, else a 4xx in OpenAI's error envelope."""
    if str(response.status_code) in case.operation.definition.raw.get("responses", {}):
        return None
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    assert_envelope(response.json())
    return None


def sse_events(text: str) -> list[tuple[str | None, str]]:
    events: list[tuple[str | None, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").strip())
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


def stream_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A streamed answer: every event matches the reference (AssistantStreamEvent, or the chat
    chunk), no ``error`` event, no run failed by the server, and ``[DONE]`` at the end."""
    if response.status_code != 200 or not _content_type(response).startswith("text/event-stream"):
        return None
    events = sse_events(response.text)
    assert events, response.text[:500]
    chat = case.path.startswith("/chat/")
    for name, data in events:
        assert name != "error", data
        if data == "[DONE]":
            continue
        payload = json.loads(data)
        if chat:
            errors = schema_errors(
                "CreateChatCompletionStreamResponse", payload, spec="chat-completions.yaml"
            )
        else:
            errors = schema_errors("AssistantStreamEvent", {"event": name, "data": payload})
            if name == "thread.run.failed":
                assert (payload.get("last_error") or {}).get("code") != "server_error", payload
        assert not errors, (name, errors[:5], data[:1000])
    assert events[-1][1] == "[DONE]", events[-1]
    return None


CHECKS = [
    not_a_server_error,
    documented_or_error_envelope,
    response_schema_conformance,
    content_type_conformance,
]
# A stream is SSE, which the reference describes in prose only: stream_conformance checks it instead.
STREAM_CHECKS = [not_a_server_error, documented_or_error_envelope, stream_conformance]


# -- the generated run -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own (SQLite): the thousands of objects the fuzzer makes stay there."""
    instance = Server(data_dir=tmp_path_factory.mktemp("fuzz") / "data").start()
    try:
        yield instance
    finally:
        instance.stop()


def _wait_for_run(http: httpx.Client, thread_id: str, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = http.get(f"/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] in statuses or time.monotonic() > deadline:
            assert run["status"] in statuses, run
            return run
        time.sleep(0.02)


RUN_ENDS = ("completed", "failed", "incomplete", "expired", "cancelled", "requires_action")


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class Objects:
    """Real objects on a server, each with known values."""

    assistant: str
    thread: str  # has `message`, and the completed `run`
    message: str
    run: str
    step: str
    idle_thread: str  # no run yet
    action_thread: str  # its `action_run` waits for the output of `call_id`
    action_run: str
    call_id: str
    file: str
    store: str  # has `file`, added again by `batch`
    batch: str
    model: str


def make_objects(http: httpx.Client) -> Objects:
    function = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant = _ok(
        http.post("/assistants", json={"model": "gpt-4o", "name": "original", "tools": [function]})
    )
    thread = _ok(http.post("/threads", json={"messages": [{"role": "user", "content": "hello"}]}))
    message = _ok(http.get(f"/threads/{thread['id']}/messages"))["data"][0]
    run = _ok(http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}))
    _wait_for_run(http, thread["id"], run["id"], "completed")
    step = _ok(http.get(f"/threads/{thread['id']}/runs/{run['id']}/steps"))["data"][0]
    idle = _ok(http.post("/threads", json={}))
    action = _ok(
        http.post(
            "/threads/runs",
            json={
                "assistant_id": assistant["id"],
                "thread": {"messages": [{"role": "user", "content": '/call lookup {"q": "x"}'}]},
            },
        )
    )
    action = _wait_for_run(http, action["thread_id"], action["id"], "requires_action")
    call_id = action["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
    file = _ok(
        http.post(
            "/files",
            files={"file": ("moons.txt", b"Zorblax has three moons.\n")},
            data={"purpose": "assistants"},
        )
    )
    store = _ok(http.post("/vector_stores", json={"name": "original", "file_ids": [file["id"]]}))
    batch = _ok(http.post(f"/vector_stores/{store['id']}/file_batches", json={"file_ids": [file["id"]]}))
    model = _ok(http.get("/models"))["data"][0]["id"]
    return Objects(
        assistant=assistant["id"],
        thread=thread["id"],
        message=message["id"],
        run=run["id"],
        step=step["id"],
        idle_thread=idle["id"],
        action_thread=action["thread_id"],
        action_run=action["id"],
        call_id=call_id,
        file=file["id"],
        store=store["id"],
        batch=batch["id"],
        model=model,
    )


@pytest.fixture(scope="module")
def real_ids(fuzz_server: Server) -> dict[str, str]:
    """The reference's path parameter names, each with the id of a real object."""
    with httpx.Client(base_url=f"{fuzz_server.url}/v1", timeout=TIMEOUT) as http:
        o = make_objects(http)
    return {
        "assistant_id": o.assistant,
        "thread_id": o.thread,
        "message_id": o.message,
        "run_id": o.run,
        "step_id": o.step,
        "file_id": o.file,
        "vector_store_id": o.store,
        "batch_id": o.batch,
        "model": o.model,
    }


def _coin(value: object) -> bool:
    """Heads for about half the values; the same answer for the same value on every run."""
    return zlib.crc32(repr(value).encode()) % 2 == 1


def checks_for(case: Case) -> list[Callable[..., Any]]:
    """The checks for ``case``."""
    checks = STREAM_CHECKS if isinstance(case.body, dict) and case.body.get("stream") is True else CHECKS
    if case.operation.definition.raw.get("operationId") == "downloadFile":
        # Not a bug: the reference says application/json, the endpoint sends the file's own bytes
        # with a type from its name (docs/api-coverage.md), as OpenAI's does.
        checks = [check for check in checks if check is not content_type_conformance]
    return checks


def _fuzz(case: Case, server: Server, real: dict[str, str]) -> None:
    # DELETE keeps the generated ids: deleting the real objects would turn the rest of the run into 404s.
    if case.method != "DELETE" and case.path_parameters and _coin(sorted(case.path_parameters.items())):
        case.path_parameters = {name: real.get(name, value) for name, value in case.path_parameters.items()}
    if isinstance(case.body, dict) and "assistant_id" in case.body and _coin(case.body):
        case.body = {**case.body, "assistant_id": real["assistant_id"]}
    checks = checks_for(case)
    case.call_and_validate(base_url=f"{server.url}/v1", checks=checks, timeout=TIMEOUT)


SETTINGS = hypothesis.settings(deadline=timedelta(seconds=20))  # a hang, not a slow answer


@assistants_schema.parametrize()
@SETTINGS
def test_assistants_api(case: Case, fuzz_server: Server, real_ids: dict[str, str]) -> None:
    _fuzz(case, fuzz_server, real_ids)


@chat_schema.parametrize()
@SETTINGS
def test_chat_api(case: Case, fuzz_server: Server, real_ids: dict[str, str]) -> None:
    _fuzz(case, fuzz_server, real_ids)


def test_fuzzed_server_is_up_and_logged_no_error(fuzz_server: Server) -> None:
    assert httpx.get(f"{fuzz_server.url}/health", timeout=TIMEOUT).json() == {"status": "ok"}
    log = fuzz_server.log()
    errors = [line for line in log.splitlines() if " ERROR " in line or line.startswith("Traceback")]
    assert not errors, "\n".join(errors[:20])


# -- targeted input: the objects and routes ----------------------------------------------------------


@pytest.fixture(scope="module")
def target(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own per store backend; its data dir alone in a directory of its own, so that
    anything written beside it is seen."""
    root = tmp_path_factory.mktemp(f"targeted-{backend}")
    with backend_server(backend, root / "data") as instance:
        yield instance


@pytest.fixture(scope="module")
def raw(target: Server) -> Iterator[httpx.Client]:
    # A connection per request: after a 500 the server drops the connection, and the next request on
    # it would fail for that, not for what it sends.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=f"{target.url}/v1", timeout=TIMEOUT, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def objs(raw: httpx.Client) -> Objects:
    return make_objects(raw)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The inner error of a 4xx in OpenAI's envelope (fails on anything else)."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    return assert_envelope(response.json())


def assert_up(target: Server) -> None:
    assert httpx.get(f"{target.url}/health", timeout=TIMEOUT).json() == {"status": "ok"}


def json_routes(o: Objects) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every operation with a JSON body: its path and a valid body with as many strings as it takes."""
    function = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Looks things up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "what"}}},
        },
    }
    message = {"role": "user", "content": [{"type": "text", "text": "hello"}], "metadata": {"topic": "math"}}
    return {
        "create-assistant": (
            "/assistants",
            {
                "model": "gpt-4o",
                "name": "Tutor",
                "description": "Helps.",
                "instructions": "Be brief.",
                "tools": [function],
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {}}},
                "metadata": {"topic": "math"},
            },
        ),
        "modify-assistant": (
            f"/assistants/{o.assistant}",
            {"name": "Tutor", "instructions": "Be brief.", "model": "gpt-4o", "metadata": {"topic": "math"}},
        ),
        "create-thread": ("/threads", {"messages": [message], "metadata": {"topic": "math"}}),
        "modify-thread": (f"/threads/{o.thread}", {"metadata": {"topic": "math"}}),
        "create-message": (f"/threads/{o.thread}/messages", message),
        "modify-message": (f"/threads/{o.thread}/messages/{o.message}", {"metadata": {"topic": "math"}}),
        "create-run": (
            f"/threads/{o.idle_thread}/runs",
            {
                "assistant_id": o.assistant,
                "model": "gpt-4o",
                "instructions": "Be brief.",
                "additional_instructions": "Really.",
                "additional_messages": [message],
                "tools": [function],
                "metadata": {"topic": "math"},
            },
        ),
        "create-thread-and-run": (
            "/threads/runs",
            {
                "assistant_id": o.assistant,
                "thread": {"messages": [message], "metadata": {"topic": "math"}},
                "instructions": "Be brief.",
                "metadata": {"topic": "math"},
            },
        ),
        "modify-run": (f"/threads/{o.thread}/runs/{o.run}", {"metadata": {"topic": "math"}}),
        "submit-tool-outputs": (
            f"/threads/{o.action_thread}/runs/{o.action_run}/submit_tool_outputs",
            {"tool_outputs": [{"tool_call_id": o.call_id, "output": "42"}]},
        ),
        "create-vector-store": (
            "/vector_stores",
            {"name": "Docs", "file_ids": [o.file], "metadata": {"topic": "math"}},
        ),
        "modify-vector-store": (f"/vector_stores/{o.store}", {"name": "Docs", "metadata": {"topic": "math"}}),
        "add-vector-store-file": (
            f"/vector_stores/{o.store}/files",
            {"file_id": o.file, "attributes": {"topic": "math"}},
        ),
        "update-vector-store-file": (
            f"/vector_stores/{o.store}/files/{o.file}",
            {"attributes": {"topic": "math"}},
        ),
        "create-file-batch": (
            f"/vector_stores/{o.store}/file_batches",
            {"file_ids": [o.file], "attributes": {"topic": "math"}},
        ),
        "search": (
            f"/vector_stores/{o.store}/search",
            {"query": "moons", "filters": {"type": "eq", "key": "topic", "value": "math"}},
        ),
        "chat": (
            "/chat/completions",
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "hello"}], "name": "ann"},
                ],
                "tools": [function],
                "user": "someone",
                "metadata": {"topic": "math"},
            },
        ),
    }


PLACEHOLDERS = Objects(**{field.name: "x" for field in fields(Objects)})
ROUTES = list(json_routes(PLACEHOLDERS))
MAPS = ("metadata", "attributes")  # objects whose keys are data too


def string_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Every string in ``value``: (its path, whether it is a key of a metadata/attributes map)."""
    if isinstance(value, str):
        yield path, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if path and path[-1] in MAPS:
                yield (*path, key), True
            yield from string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, (*path, index))


def replaced(value: Any, path: tuple[Any, ...], is_key: bool, text: Callable[[str], str]) -> Any:
    """A copy of ``value`` with the string at ``path`` (or the key, for ``is_key``) replaced."""
    if not path:
        return text(value)
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [replaced(item, rest, is_key, text) if i == head else item for i, item in enumerate(value)]
    if is_key and not rest:
        return {(text(key) if key == head else key): item for key, item in value.items()}
    return {key: (replaced(item, rest, is_key, text) if key == head else item) for key, item in value.items()}


def dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")


# -- targeted input: NUL, SQL, nesting, encoding, metadata -------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_nul_in_every_string_is_400_naming_it(
    target: Server, raw: httpx.Client, objs: Objects, route: str
) -> None:
    # docs/architecture.md: NUL characters in strings are a 400 naming the field (a map's key: the map).
    path, body = json_routes(objs)[route]
    failures = []
    for leaf, is_key in string_leaves(body):
        sent = replaced(body, leaf, is_key, lambda s: s[:1] + "\x00" + s[1:])
        response = raw.post(path, json=sent)
        where = dotted(leaf[:-1] if is_key else leaf)
        try:
            error = error_of(response)
            assert response.status_code == 400, response.text
            assert error["param"] == where, error
        except AssertionError as failure:
            failures.append(f"{dotted(leaf)}{' (key)' if is_key else ''}: {failure}")
    assert not failures, "\n".join(failures)
    assert_up(target)


@pytest.mark.parametrize("route", ROUTES)
def test_sql_in_every_string_is_harmless(
    target: Server, raw: httpx.Client, objs: Objects, route: str
) -> None:
    # Valid text, so a 2xx is fine (the next tests check it is stored verbatim); an id or an enum
    # value that is SQL is a 4xx; a 5xx never.
    path, body = json_routes(objs)[route]
    failures = []
    for index, (leaf, is_key) in enumerate(string_leaves(body)):
        sql = SQL[index % 2]
        response = raw.post(path, json=replaced(body, leaf, is_key, lambda s, sql=sql: sql))
        if response.status_code == 200 and response.json().get("object") == "thread.run":
            # Let the run end (the thread is busy until then), and see it did not crash.
            run = response.json()
            run = _wait_for_run(raw, run["thread_id"], run["id"], *RUN_ENDS)
            if (run["last_error"] or {}).get("code") == "server_error":
                failures.append(f"{dotted(leaf)}={sql!r}: the run failed: {run['last_error']}")
        elif response.status_code >= 300:
            try:
                error_of(response)
            except AssertionError as failure:
                failures.append(f"{dotted(leaf)}{' (key)' if is_key else ''}={sql!r}: {failure}")
    assert not failures, "\n".join(failures)
    assert_up(target)
    # The tables are all still there.
    for listed in (
        "/assistants",
        f"/threads/{objs.thread}/messages",
        f"/threads/{objs.thread}/runs",
        "/files",
    ):
        assert raw.get(listed).status_code == 200, listed


def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "arrays" else ('{"a":' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("kind", ["arrays", "objects"])
@pytest.mark.parametrize("route", ROUTES)
def test_ten_thousand_levels_of_nesting_is_400(
    target: Server, raw: httpx.Client, objs: Objects, route: str, kind: str
) -> None:
    path, body = json_routes(objs)[route]
    # In place of the body's first field, so that everything before it is valid.
    first = next(iter(body))
    text = json.dumps({**body, first: "@@HERE@@"}).replace('"@@HERE@@"', _nested(10_000, kind))
    response = raw.post(path, content=text.encode(), headers=JSON)
    error = error_of(response)
    assert response.status_code == 400, error
    assert raw.get("/assistants").status_code == 200, error
    assert_up(target)


@pytest.mark.parametrize(
    "bad",
    [b"caf\xe9", b"\xc3", b"\xed\xa0\x80"],
    ids=["latin-1", "truncated", "encoded-surrogate"],
)
@pytest.mark.parametrize("route", ROUTES)
def test_invalid_utf8_is_400(
    target: Server, raw: httpx.Client, objs: Objects, route: str, bad: bytes
) -> None:
    path, body = json_routes(objs)[route]
    leaf, is_key = next(string_leaves(body))
    text = json.dumps(replaced(body, leaf, is_key, lambda s: "@@HERE@@")).encode()
    response = raw.post(path, content=text.replace(b"@@HERE@@", bad), headers=JSON)
    error_of(response)
    assert response.status_code == 400, response.text
    assert_up(target)


HUGE_MAPS = {
    "17-pairs": {f"k{i}": "v" for i in range(17)},
    "10000-pairs": {f"k{i}": "v" for i in range(10_000)},
    "key-65": {"k" * 65: "v"},
    "value-513": {"k": "v" * 513},
    "value-100000": {"k": "v" * 100_000},
}


def maps_of(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The paths of the metadata and attributes maps in ``body``."""
    return list(dict.fromkeys(leaf[:-1] for leaf, is_key in string_leaves(body) if is_key))


ROUTES_WITH_MAPS = [route for route, (_, body) in json_routes(PLACEHOLDERS).items() if maps_of(body)]


@pytest.mark.parametrize("size", list(HUGE_MAPS))
@pytest.mark.parametrize("route", ROUTES_WITH_MAPS)
def test_oversized_metadata_is_400_naming_it(
    target: Server, raw: httpx.Client, objs: Objects, route: str, size: str
) -> None:
    path, body = json_routes(objs)[route]
    # Every map of the body, one at a time (a thread's messages' too, inside create-thread).
    for where in maps_of(body):
        sent = json.loads(json.dumps(body))
        node = sent
        for step in where[:-1]:
            node = node[step]
        node[where[-1]] = HUGE_MAPS[size]
        error = error_of(raw.post(path, json=sent))
        assert error["param"] is not None, error
        assert error["param"].startswith(dotted(where)), (dotted(where), error)
    assert_up(target)


# -- targeted input: cursors, queries and path ids ---------------------------------------------------


def list_paths(o: Objects) -> dict[str, str]:
    """Every list operation."""
    return {
        "assistants": "/assistants",
        "messages": f"/threads/{o.thread}/messages",
        "runs": f"/threads/{o.thread}/runs",
        "run-steps": f"/threads/{o.thread}/runs/{o.run}/steps",
        "files": "/files",
        "vector-stores": "/vector_stores",
        "vector-store-files": f"/vector_stores/{o.store}/files",
        "batch-files": f"/vector_stores/{o.store}/file_batches/{o.batch}/files",
    }


QUERIES = [
    *[("after", sql) for sql in SQL],
    *[("before", sql) for sql in SQL],
    *[("order", sql) for sql in SQL],
    *[("limit", sql) for sql in SQL],
    ("limit", "1 OR 1=1"),
    ("limit", "1; DROP TABLE runs"),
    ("after", "\x00"),
    ("order", "asc\x00"),
    ("limit", "10\x00"),
]


@pytest.mark.parametrize("listing", list(list_paths(PLACEHOLDERS)))
def test_sql_and_nul_in_cursors_order_and_limit_are_400(
    target: Server, raw: httpx.Client, objs: Objects, listing: str
) -> None:
    path = list_paths(objs)[listing]
    failures = []
    for name, value in QUERIES:
        if name == "before" and path == "/files":
            continue  # the Files list has no `before` (an unknown query parameter is ignored)
        response = raw.get(path, params={name: value})
        try:
            error = error_of(response)
            assert response.status_code == 400, response.text
            assert error["param"] == name, error
        except AssertionError as failure:
            failures.append(f"{name}={value!r}: {failure}")
    assert not failures, "\n".join(failures)
    assert_up(target)


def test_sql_in_filters_finds_nothing_and_breaks_nothing(
    target: Server, raw: httpx.Client, objs: Objects
) -> None:
    for sql in SQL:
        # Filters on a free value: nothing matches.
        for path, params in [
            ("/files", {"purpose": sql}),
            (f"/threads/{objs.thread}/messages", {"run_id": sql}),
        ]:
            response = raw.get(path, params=params)
            assert response.status_code in (200, 400), response.text
            if response.status_code == 200:
                assert response.json()["data"] == [], response.text
            else:
                error_of(response)
        # Filters on an enum: a 400 naming them.
        for path, params in [
            (f"/vector_stores/{objs.store}/files", {"filter": sql}),
            (f"/threads/{objs.thread}/runs/{objs.run}/steps", {"include[]": sql}),
        ]:
            error = error_of(raw.get(path, params=params))
            assert error["param"] in params, error
    # Everything is still there.
    listed = raw.get(f"/threads/{objs.thread}/messages", params={"order": "asc", "limit": 1}).json()
    assert [m["id"] for m in listed["data"]] == [objs.message]
    assert_up(target)


def object_paths(o: Objects) -> list[tuple[str, str]]:
    """GET paths of single objects, as (template with {}, the id the {} stands for)."""
    return [
        ("/assistants/{}", o.assistant),
        ("/threads/{}", o.thread),
        (f"/threads/{o.thread}/messages/{{}}", o.message),
        (f"/threads/{o.thread}/runs/{{}}", o.run),
        (f"/threads/{o.thread}/runs/{o.run}/steps/{{}}", o.step),
        ("/files/{}", o.file),
        ("/files/{}/content", o.file),
        ("/vector_stores/{}", o.store),
        (f"/vector_stores/{o.store}/files/{{}}", o.file),
        (f"/vector_stores/{o.store}/file_batches/{{}}", o.batch),
    ]


def test_sql_in_path_ids_is_4xx(target: Server, raw: httpx.Client, objs: Objects) -> None:
    # 404 (no such object), 405 (a method the path does not have) or 400, in the envelope.
    failures = []
    for template, real in object_paths(objs):
        for sql in [*SQL, f"{real}' OR 1=1 --", f"{real}%' OR '1'='1"]:
            for method in ("GET", "POST", "DELETE"):
                if method == "POST" and template.endswith("content"):
                    continue
                response = raw.request(
                    method, template.format(quote(sql, safe="")), json={} if method == "POST" else None
                )
                if response.status_code not in (404, 405, 400) or set(response.json()) != {"error"}:
                    failures.append(
                        f"{method} {template.format(sql)}: {response.status_code} {response.text[:200]}"
                    )
        # ... and the object is still there.
        assert raw.get(template.format(real)).status_code == 200, template
    assert not failures, "\n".join(failures)
    assert_up(target)


# -- targeted input: SQL-looking text is data ---------------------------------------------------------


@pytest.mark.parametrize("sql", SQL, ids=["or-1-1", "drop-table"])
def test_sql_text_is_stored_verbatim(raw: httpx.Client, objs: Objects, sql: str) -> None:
    thread = _ok(raw.post("/threads", json={"metadata": {sql[:64]: sql}}))
    assert _ok(raw.get(f"/threads/{thread['id']}"))["metadata"] == {sql[:64]: sql}

    message = _ok(raw.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": sql}))
    for read in (
        _ok(raw.get(f"/threads/{thread['id']}/messages/{message['id']}")),
        _ok(raw.get(f"/threads/{thread['id']}/messages"))["data"][0],
    ):
        assert read["content"][0]["text"]["value"] == sql, read

    texts = {"name": sql, "description": sql, "instructions": sql, "metadata": {"q": sql}}
    assistant = _ok(raw.post("/assistants", json={"model": sql, **texts}))
    read = _ok(raw.get(f"/assistants/{assistant['id']}"))
    assert {key: read[key] for key in texts} == texts
    assert read["model"] == sql

    # A run with it all, on the scripted model, which says back what it was told.
    thread_and_run = {
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": sql}]},
        "metadata": {"q": sql},
    }
    run = _ok(raw.post("/threads/runs", json=thread_and_run))
    done = _wait_for_run(raw, run["thread_id"], run["id"], "completed")
    assert done["metadata"] == {"q": sql}
    answer = _ok(raw.get(f"/threads/{run['thread_id']}/messages"))["data"][0]
    assert answer["content"][0]["text"]["value"] == f"You said: {sql}"

    store = _ok(raw.post("/vector_stores", json={"name": sql, "metadata": {"q": sql}}))
    assert (store["name"], store["metadata"]) == (sql, {"q": sql})
    assert _ok(raw.get(f"/vector_stores/{store['id']}"))["name"] == sql
    found = _ok(raw.post(f"/vector_stores/{objs.store}/search", json={"query": sql}))
    assert found["search_query"] == [sql]

    file = _ok(raw.post("/files", files={"file": (sql, sql.encode())}, data={"purpose": "assistants"}))
    # httpx (so the SDK) sends a double quote in a file name as %22, HTML's multipart rule.
    assert _ok(raw.get(f"/files/{file['id']}"))["filename"] == sql.replace('"', "%22")
    assert raw.get(f"/files/{file['id']}/content").content == sql.encode()
    added = _ok(
        raw.post(
            f"/vector_stores/{store['id']}/files", json={"file_id": file["id"], "attributes": {"q": sql}}
        )
    )
    assert added["attributes"] == {"q": sql}

    chat = _ok(
        raw.post(
            "/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": sql}]}
        )
    )
    assert chat["choices"][0]["message"]["content"] == f"You said: {sql}"


# -- targeted input: uploaded file names ---------------------------------------------------------------


def upload(raw: httpx.Client, filename: bytes, content: bytes) -> httpx.Response:
    """POST /files with the file name's bytes exactly as given (httpx would escape some of them)."""
    body = b"".join(
        [
            b'--b0undary\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n',
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n',
            b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n--b0undary--\r\n",
        ]
    )
    return raw.post(
        "/files", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"}
    )


def _files_outside(target: Server) -> set[Path]:
    root = target.data_dir.parent
    return {
        path for path in root.rglob("*") if target.data_dir not in path.parents and path != target.data_dir
    }


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "../../../../../../../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "a/../../../escape.txt",
        "....//....//escape.txt",
        "%2e%2e%2f%2e%2e%2fescape.txt",
        "files/../../escape.txt",
        "@ABSOLUTE@",
    ],
)
def test_path_traversal_in_uploaded_file_names_writes_nothing_outside(
    target: Server, raw: httpx.Client, name: str
) -> None:
    # An absolute name points into this test's own directory, never at the machine's files.
    name = name.replace("@ABSOLUTE@", str(target.data_dir.parent / "absolute-escape.txt"))
    before = _files_outside(target)
    content = f"stay inside: {name}".encode()
    file = _ok(upload(raw, name.encode(), content))
    assert file["filename"] == name
    assert _ok(raw.get(f"/files/{file['id']}"))["filename"] == name
    assert raw.get(f"/files/{file['id']}/content").content == content
    assert _files_outside(target) == before
    assert not (target.data_dir.parent / "etc").exists()
    assert not (target.data_dir.parent / "escape.txt").exists()
    assert_up(target)


# -- what the fuzzing found, fixed: a test each ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "component"),
    [
        (
            "/assistants",
            {"model": "gpt-4o", "tool_resources": {"file_search": {"vector_store_ids": None}}},
            "AssistantObject",
        ),
        ("/assistants", {"model": "gpt-4o", "tool_resources": {"code_interpreter": None}}, "AssistantObject"),
        (
            "/assistants",
            {"model": "gpt-4o", "tools": [{"type": "file_search", "file_search": {"max_num_results": None}}]},
            "AssistantObject",
        ),
        (
            "/assistants",
            {
                "model": "gpt-4o",
                "tools": [
                    {
                        "type": "file_search",
                        "file_search": {"ranking_options": {"ranker": None, "score_threshold": 0}},
                    }
                ],
            },
            "AssistantObject",
        ),
        ("/threads", {"tool_resources": {"file_search": None}}, "ThreadObject"),
    ],
    ids=["vector_store_ids", "code_interpreter", "max_num_results", "ranker", "thread-file_search"],
)
def test_an_explicit_null_inside_tools_or_tool_resources_means_left_out(
    raw: httpx.Client, path: str, body: dict[str, Any], component: str
) -> None:
    """Once stored as sent: the object came back with nulls where the reference has an array, an
    object or an enum."""
    sent = _ok(raw.post(path, json=body))
    errors = schema_errors(component, sent)
    assert not errors, errors
    assert _has_no_null(sent.get("tools")), sent["tools"]
    assert _has_no_null(sent.get("tool_resources")), sent["tool_resources"]
    # The object reads back the same.
    kind = "assistants" if component == "AssistantObject" else "threads"
    assert _ok(raw.get(f"/{kind}/{sent['id']}")) == sent


def _has_no_null(value: Any) -> bool:
    if isinstance(value, dict):
        return all(item is not None and _has_no_null(item) for item in value.values())
    if isinstance(value, list):
        return all(item is not None and _has_no_null(item) for item in value)
    return True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_prompt_tokens", 2**63),
        ("max_completion_tokens", 2**63),
        ("max_prompt_tokens", 2**31),
        ("last_messages", 2**63),
    ],
    ids=[
        "max_prompt_tokens-2**63",
        "max_completion_tokens-2**63",
        "max_prompt_tokens-2**31",
        "last_messages-2**63",
    ],
)
def test_integers_past_the_columns_range_are_refused(
    raw: httpx.Client, target: Server, objs: Objects, field: str, value: int
) -> None:
    """Once a 500 (a database overflow): numbers that do not fit a 32-bit column get a 400 naming them."""
    body: dict[str, Any] = {"assistant_id": objs.assistant}
    if field == "last_messages":
        body["truncation_strategy"] = {"type": "last_messages", "last_messages": value}
    else:
        body[field] = value
    response = raw.post("/threads/runs", json=body)
    assert_up(target)
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] in (field, f"truncation_strategy.{field}")


def test_prompt_cache_breakpoint_on_a_chat_content_part_is_accepted(raw: httpx.Client) -> None:
    """In the reference for text and image parts; once refused as an unrecognized argument. It only
    shapes OpenAI's own cache, so it is accepted and has no effect."""
    part = {"type": "text", "text": "hello", "prompt_cache_breakpoint": {"mode": "explicit"}}
    response = raw.post(
        "/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    )
    assert _ok(response)["choices"][0]["message"]["content"] == "You said: hello"


@pytest.mark.parametrize(
    ("where", "part"),
    [
        ("message", {"type": "text", "text": "hi", "bogus": 1}),
        ("message", {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "bogus": 1}),
        ("chat", {"type": "text", "text": "hi", "bogus": 1}),
        ("chat", {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "bogus": 1}),
        ("tool", {"type": "function", "function": {"name": "f"}, "bogus": 1}),
    ],
    ids=["message-text", "message-image_url", "chat-text", "chat-image_url", "function-tool"],
)
def test_an_unknown_key_beside_a_tagged_part_is_named(
    raw: httpx.Client, objs: Objects, where: str, part: dict[str, Any]
) -> None:
    """The part's type is also one of its keys ("text", "image_url", "function"): the unknown key was
    once reported as that key."""
    if where == "message":
        response = raw.post(f"/threads/{objs.idle_thread}/messages", json={"role": "user", "content": [part]})
        expected = "content[0].bogus"
    elif where == "chat":
        response = raw.post(
            "/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
        )
        expected = "messages[0].content[0].bogus"
    else:
        response = raw.post("/assistants", json={"model": "gpt-4o", "tools": [part]})
        expected = "tools[0].bogus"
    error = error_of(response)
    assert response.status_code == 400
    assert error["param"] == expected, error
    assert error["message"] == f"Unrecognized request argument supplied: {expected}"


def test_a_nul_in_an_uploaded_file_name_is_refused(target: Server, raw: httpx.Client) -> None:
    """Once stored on SQLite, and a 500 on PostgreSQL (which refuses NUL in text)."""
    response = upload(raw, b"a\x00b.txt", b"hello")
    assert_up(target)
    error = error_of(response)
    assert response.status_code == 400, error
    assert error["param"] == "file", error
    assert "NUL" in error["message"]


def test_a_nul_in_the_files_purpose_filter_matches_nothing(target: Server, raw: httpx.Client) -> None:
    """Once a 500 on PostgreSQL, which cannot even compare with such a string."""
    assert _ok(raw.get("/files", params={"purpose": "assistants"}))["data"], "the fixture has a file"
    assert _ok(raw.get("/files", params={"purpose": "assistants\x00"}))["data"] == []
    assert_up(target)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
@pytest.mark.parametrize("where", ["attributes", "parameters"])
def test_non_json_numbers_are_refused(raw: httpx.Client, objs: Objects, where: str, number: bytes) -> None:
    """NaN and the infinities are no JSON (RFC 8259), and 1e400 is past a double: Python's parser takes
    them all, and they were once stored as null (a 500 on PostgreSQL for attributes)."""
    if where == "attributes":
        path = f"/vector_stores/{objs.store}/files/{objs.file}"
        body = b'{"attributes": {"k": ' + number + b"}}"
        param = "attributes.k"
    else:
        path = "/assistants"
        body = (
            b'{"model": "m", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"k": '
            + number
            + b"}}}]}"
        )
        param = "tools[0].function.parameters.k"
    response = raw.post(path, content=body, headers=JSON)
    error = error_of(response)
    assert response.status_code == 400, error
    assert error["param"] == param, error
    assert "finite" in error["message"]

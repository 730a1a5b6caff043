"""API keys and projects: keys made with the CLI, each acting in its project; another project's
objects are invisible through every endpoint, answered exactly like ids that do not exist."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import Server, backend_server, run_cli
from tests.run_support import function_tool, wait_for_run, wait_for_status


@dataclass
class Tenants:
    server: Server
    alpha: openai.OpenAI  # the project whose objects the other must not reach
    beta: openai.OpenAI
    alpha_key_id: str
    alpha_secret: str


def _cli(server: Server, *arguments: str) -> Any:
    result = run_cli(list(arguments), server.data_dir, server.env)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tenants(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    with backend_server(request.param, tmp_path_factory.mktemp(f"tenants-{request.param}")) as server:
        made = {}
        for project in ("alpha", "beta"):
            result = _cli(server, "keys", "create", "--project", project, "--name", f"{project} key")
            secret = result.stdout.strip()
            assert secret.startswith("sk-proj-")
            made[project] = (secret, result.stderr.split()[0])
        # The server looks for keys made while it was open at most a second later.
        time.sleep(1.2)
        sdk = {
            project: openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0, timeout=15)
            for project, (secret, _) in made.items()
        }
        yield Tenants(server, sdk["alpha"], sdk["beta"], made["alpha"][1], made["alpha"][0])
        for client in sdk.values():
            client.close()


def test_keys_are_listed_without_their_secrets(tenants: Tenants) -> None:
    listing = _cli(tenants.server, "keys", "list").stdout
    assert tenants.alpha_key_id in listing
    assert tenants.alpha_secret not in listing
    assert tenants.alpha_secret[:12] + "..." in listing
    rows = [line.split("\t") for line in listing.strip().splitlines()[1:]]
    assert sorted((row[1], row[2], row[6]) for row in rows) == [
        ("alpha", "alpha key", "active"),
        ("beta", "beta key", "active"),
    ]


def test_requests_need_a_valid_key_once_keys_exist(tenants: Tenants) -> None:
    with httpx.Client(base_url=tenants.server.url) as http:
        missing = http.get("/v1/assistants")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_api_key"
        wrong = http.get("/v1/assistants", headers={"Authorization": "Bearer sk-proj-not-a-key-of-ours"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert "sk-proj-not-a-key-of-ours" not in wrong.text
        # Health and readiness stay open to probes.
        assert http.get("/ready").status_code == 200


def _missing(prefix: str) -> str:
    return prefix + "0" * 24


def _same_as_missing(
    foreign: Callable[[], Any], missing: Callable[[], Any], foreign_id: str, missing_id: str
) -> None:
    with pytest.raises(openai.APIStatusError) as theirs:
        foreign()
    with pytest.raises(openai.APIStatusError) as nobody:
        missing()
    assert theirs.value.status_code == nobody.value.status_code
    assert theirs.value.status_code in (400, 404)
    # The same answer, word for word, but for the id.
    assert json.dumps(theirs.value.body).replace(foreign_id, "ID") == json.dumps(nobody.value.body).replace(
        missing_id, "ID"
    )


def test_another_project_s_objects_are_answered_like_missing_ones(tenants: Tenants) -> None:
    a, b = tenants.alpha, tenants.beta
    # Alpha's objects: an assistant with a store and a file, a thread with a finished run and one that
    # waits for a tool output, a batch.
    file = a.files.create(file=("alpha.txt", b"alpha's secret plans: the moon base"), purpose="assistants")
    store = a.vector_stores.create(name="alpha store", file_ids=[file.id])
    batch = a.vector_stores.file_batches.create(store.id, file_ids=[file.id])
    assistant = a.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}, function_tool("f")],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "hello from alpha"}])
    message = a.beta.threads.messages.list(thread.id).data[0]
    run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    run = wait_for_run(a, thread.id, run.id, timeout=15)
    step = a.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    waiting_thread = a.beta.threads.create(messages=[{"role": "user", "content": "/call f {}"}])
    waiting = a.beta.threads.runs.create(waiting_thread.id, assistant_id=assistant.id)
    waiting = wait_for_status(a, waiting_thread.id, waiting.id, "requires_action", timeout=15)

    # Beta's own objects, to point at alpha's from.
    own_thread = b.beta.threads.create()
    own_assistant = b.beta.assistants.create(model="gpt-4o")
    own_store = b.vector_stores.create(name="beta store")

    m = {
        prefix: _missing(prefix)
        for prefix in ("asst_", "thread_", "msg_", "run_", "step_", "file-", "vs_", "vsfb_")
    }
    cases: list[tuple[str, Callable[[str], Any], str, str]] = [
        # (what, call with an id, alpha's id, a missing id of the same kind)
        ("assistants.retrieve", lambda i: b.beta.assistants.retrieve(i), assistant.id, m["asst_"]),
        ("assistants.update", lambda i: b.beta.assistants.update(i, name="x"), assistant.id, m["asst_"]),
        ("assistants.delete", lambda i: b.beta.assistants.delete(i), assistant.id, m["asst_"]),
        ("threads.retrieve", lambda i: b.beta.threads.retrieve(i), thread.id, m["thread_"]),
        ("threads.update", lambda i: b.beta.threads.update(i, metadata={"k": "v"}), thread.id, m["thread_"]),
        ("threads.delete", lambda i: b.beta.threads.delete(i), thread.id, m["thread_"]),
        ("messages.list", lambda i: b.beta.threads.messages.list(i), thread.id, m["thread_"]),
        (
            "messages.create",
            lambda i: b.beta.threads.messages.create(i, role="user", content="x"),
            thread.id,
            m["thread_"],
        ),
        (
            "messages.retrieve",
            lambda i: b.beta.threads.messages.retrieve(i, thread_id=thread.id),
            message.id,
            m["msg_"],
        ),
        ("runs.list", lambda i: b.beta.threads.runs.list(i), thread.id, m["thread_"]),
        ("runs.retrieve", lambda i: b.beta.threads.runs.retrieve(i, thread_id=thread.id), run.id, m["run_"]),
        (
            "runs.cancel",
            lambda i: b.beta.threads.runs.cancel(i, thread_id=waiting_thread.id),
            waiting.id,
            m["run_"],
        ),
        (
            "runs.submit_tool_outputs",
            lambda i: b.beta.threads.runs.submit_tool_outputs(
                i, thread_id=waiting_thread.id, tool_outputs=[]
            ),
            waiting.id,
            m["run_"],
        ),
        ("steps.list", lambda i: b.beta.threads.runs.steps.list(i, thread_id=thread.id), run.id, m["run_"]),
        (
            "steps.retrieve",
            lambda i: b.beta.threads.runs.steps.retrieve(i, thread_id=thread.id, run_id=run.id),
            step.id,
            m["step_"],
        ),
        (
            "runs.create with their assistant",
            lambda i: b.beta.threads.runs.create(own_thread.id, assistant_id=i),
            assistant.id,
            m["asst_"],
        ),
        (
            "threads.create_and_run with their assistant",
            lambda i: b.beta.threads.create_and_run(assistant_id=i),
            assistant.id,
            m["asst_"],
        ),
        ("files.retrieve", lambda i: b.files.retrieve(i), file.id, m["file-"]),
        ("files.content", lambda i: b.files.content(i), file.id, m["file-"]),
        ("files.delete", lambda i: b.files.delete(i), file.id, m["file-"]),
        ("vector_stores.retrieve", lambda i: b.vector_stores.retrieve(i), store.id, m["vs_"]),
        ("vector_stores.update", lambda i: b.vector_stores.update(i, name="x"), store.id, m["vs_"]),
        ("vector_stores.delete", lambda i: b.vector_stores.delete(i), store.id, m["vs_"]),
        ("vector_stores.search", lambda i: b.vector_stores.search(i, query="moon"), store.id, m["vs_"]),
        ("vector_stores.files.list", lambda i: b.vector_stores.files.list(i), store.id, m["vs_"]),
        (
            "vector_stores.files.create with their file",
            lambda i: b.vector_stores.files.create(own_store.id, file_id=i),
            file.id,
            m["file-"],
        ),
        (
            "vector_stores.files.retrieve",
            lambda i: b.vector_stores.files.retrieve(i, vector_store_id=store.id),
            file.id,
            m["file-"],
        ),
        (
            "file_batches.retrieve",
            lambda i: b.vector_stores.file_batches.retrieve(i, vector_store_id=store.id),
            batch.id,
            m["vsfb_"],
        ),
        (
            "vector_stores.create with their file",
            lambda i: b.vector_stores.create(file_ids=[i]),
            file.id,
            m["file-"],
        ),
        (
            "assistants.create with their store",
            lambda i: b.beta.assistants.create(
                model="gpt-4o",
                tools=[{"type": "file_search"}],
                tool_resources={"file_search": {"vector_store_ids": [i]}},
            ),
            store.id,
            m["vs_"],
        ),
        (
            "assistants.update with their file",
            lambda i: b.beta.assistants.update(
                own_assistant.id,
                tools=[{"type": "code_interpreter"}],
                tool_resources={"code_interpreter": {"file_ids": [i]}},
            ),
            file.id,
            m["file-"],
        ),
        (
            "messages.create with their file attached",
            lambda i: b.beta.threads.messages.create(
                own_thread.id,
                role="user",
                content="x",
                attachments=[{"file_id": i, "tools": [{"type": "file_search"}]}],
            ),
            file.id,
            m["file-"],
        ),
        (
            "threads.create with their store",
            lambda i: b.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [i]}}),
            store.id,
            m["vs_"],
        ),
    ]
    for what, call, theirs, missing in cases:
        try:
            _same_as_missing(
                lambda call=call, theirs=theirs: call(theirs),
                lambda call=call, missing=missing: call(missing),
                theirs,
                missing,
            )
        except AssertionError as failure:
            raise AssertionError(f"{what}: {failure}") from failure

    # Lists show only one's own, and alpha's ids as cursors are refused like ids that do not exist.
    assert [x.id for x in b.beta.assistants.list()] == [own_assistant.id]
    for cursor in ("after", "before"):
        _same_as_missing(
            lambda cursor=cursor: b.beta.assistants.list(**{cursor: assistant.id}),
            lambda cursor=cursor: b.beta.assistants.list(**{cursor: m["asst_"]}),
            assistant.id,
            m["asst_"],
        )
    _same_as_missing(
        lambda: b.vector_stores.list(after=store.id),
        lambda: b.vector_stores.list(after=m["vs_"]),
        store.id,
        m["vs_"],
    )
    _same_as_missing(
        lambda: b.files.list(after=file.id), lambda: b.files.list(after=m["file-"]), file.id, m["file-"]
    )
    assert file.id not in {x.id for x in b.files.list()}
    assert store.id not in {x.id for x in b.vector_stores.list()}
    # Beta's searches find nothing of alpha's, even with the same words.
    assert b.vector_stores.search(own_store.id, query="alpha's secret plans: the moon base").data == []

    # Nothing of alpha's changed.
    assert a.beta.assistants.retrieve(assistant.id).name is None
    assert a.files.content(file.id).content == b"alpha's secret plans: the moon base"
    assert a.beta.threads.runs.retrieve(waiting.id, thread_id=waiting_thread.id).status == "requires_action"
    assert [x.id for x in a.beta.assistants.list()] == [assistant.id]


def test_a_revoked_key_is_refused_at_once(tenants: Tenants, tmp_path: Path) -> None:
    # A key of its own to revoke (the module's keys serve the other tests).
    made = _cli(tenants.server, "keys", "create", "--project", "alpha", "--name", "short-lived")
    secret, key_id = made.stdout.strip(), made.stderr.split()[0]
    with openai.OpenAI(base_url=f"{tenants.server.url}/v1", api_key=secret, max_retries=0) as client:
        # The same project as alpha's other key: it sees alpha's objects.
        mine = client.beta.assistants.create(model="gpt-4o", name="short-lived")
        assert mine.id in {x.id for x in tenants.alpha.beta.assistants.list()}
        _cli(tenants.server, "keys", "revoke", key_id)
        with pytest.raises(openai.AuthenticationError) as refused:
            client.beta.assistants.list()
        assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    listing = _cli(tenants.server, "keys", "list").stdout
    assert any(line.startswith(key_id) and line.endswith("revoked") for line in listing.splitlines())
    again = run_cli(["keys", "revoke", key_id], tenants.server.data_dir, tenants.server.env)
    assert again.returncode == 1
    assert "no active key" in again.stderr

"""Scale-out on PostgreSQL, on real processes: two API nodes (``serve --no-worker``) and two workers
(``assistd worker``) sharing one database. Clients move between the nodes; workers and nodes die."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import (
    Server,
    WorkerProcess,
    create_pg_database,
    drop_pg_database,
    postgres_enabled,
    run_cli,
)
from tests.run_support import (
    BETA,
    SSE,
    TEXT_ANSWER,
    collapse,
    function_tool,
    make_sdk,
    only_assistant_reply,
    read_sse,
    text_of,
    wait_for_run,
    wait_for_status,
)

pytestmark = pytest.mark.skipif(not postgres_enabled(), reason="ASSISTD_TEST_PG=off")

# A dead worker's runs are taken over within a second or so.
FAST = {"ASSISTD_RUN_LEASE_SECONDS": "1", "ASSISTD_WORKER_POLL_SECONDS": "0.2"}


@dataclass
class Cluster:
    database_url: str
    nodes: list[Server]
    workers: list[WorkerProcess]

    def sdk(self, node: int) -> openai.OpenAI:
        return make_sdk(self.nodes[node])

    def restart_dead(self) -> None:
        for member in [*self.nodes, *self.workers]:
            assert member.process is not None
            if member.process.poll() is not None:
                member.start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    database_url = create_pg_database()
    root = tmp_path_factory.mktemp("cluster")
    env = {"ASSISTD_DATABASE_URL": database_url, **FAST}
    # The first node migrates the database before the others start.
    nodes = [Server(data_dir=root / "node0", env=env, args=["--no-worker"]).start()]
    try:
        nodes.append(Server(data_dir=root / "node1", env=env, args=["--no-worker"]).start())
        workers = [WorkerProcess(data_dir=root / f"worker{n}", env=env).start() for n in range(2)]
        yield Cluster(database_url, nodes, workers)
    finally:
        for member in [*nodes, *locals().get("workers", [])]:
            member.stop()
        drop_pg_database(database_url)


@pytest.fixture(autouse=True)
def _restart_dead(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.restart_dead()  # for the next test, whatever this one killed


def test_the_tutorial_moves_between_nodes(cluster: Cluster) -> None:
    with cluster.sdk(0) as a, cluster.sdk(1) as b:
        assistant = a.beta.assistants.create(model="gpt-4o", name="Math Tutor", tools=[function_tool("f")])
        thread = b.beta.threads.create()
        a.beta.threads.messages.create(thread.id, role="user", content="solve 3x + 11 = 14")
        run = b.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert run.status == "queued"
        # Polled on both nodes in turn: each answers the current truth.
        clients = [a, b]
        seen = []
        for turn in range(400):
            run = clients[turn % 2].beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            seen.append(run.status)
            if run.status == "completed":
                break
            time.sleep(0.05)
        assert run.status == "completed", seen
        assert set(seen) <= {"queued", "in_progress", "completed"}
        reply = only_assistant_reply(a, thread.id, run.id)
        assert text_of(reply) == "You said: solve 3x + 11 = 14"

        # Function calling: the client sees requires_action on one node and answers on the other.
        a.beta.threads.messages.create(thread.id, role="user", content='/call f {"x": 1}')
        run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        waiting = wait_for_status(b, thread.id, run.id, "requires_action", timeout=10)
        assert waiting.required_action is not None
        call = waiting.required_action.submit_tool_outputs.tool_calls[0]
        assert call.function.name == "f"
        resumed = b.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
        )
        assert resumed.status == "queued"
        assert wait_for_run(a, thread.id, run.id, timeout=10).status == "completed"
        assert text_of(only_assistant_reply(b, thread.id, run.id)) == "f returned 42"


def test_a_stream_on_one_node_follows_a_run_a_worker_executes(cluster: Cluster) -> None:
    with cluster.sdk(0) as a, cluster.sdk(1) as b:
        assistant = b.beta.assistants.create(model="gpt-4o")
        thread = b.beta.threads.create(messages=[{"role": "user", "content": "stream me across nodes"}])
        names: list[str] = []
        with a.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            for event in stream:
                names.append(event.event)
            final = stream.get_final_run()
            messages = stream.get_final_messages()
        assert collapse(names) == TEXT_ANSWER
        assert names.count("thread.message.delta") > 3
        assert final.status == "completed"
        assert text_of(messages[0]) == "You said: stream me across nodes"
        # What the stream said is what the other node stores.
        assert text_of(only_assistant_reply(b, thread.id, final.id)) == "You said: stream me across nodes"


def test_a_stream_resumes_on_another_node_with_no_gap_or_repeat(cluster: Cluster) -> None:
    with cluster.sdk(0) as a:
        assistant = a.beta.assistants.create(model="gpt-4o")
        thread = a.beta.threads.create(messages=[{"role": "user", "content": "/sleep 1.5\nafter the outage"}])
    body = {"assistant_id": assistant.id, "stream": True}
    path = f"/v1/threads/{thread.id}/runs"
    first: list[SSE] = []
    with (
        httpx.Client(base_url=cluster.nodes[0].url, timeout=10) as http,
        http.stream("POST", path, json=body, headers=BETA) as response,
    ):
        assert response.status_code == 200
        for event in read_sse(response.iter_lines()):
            first.append(event)
            if event.event == "thread.run.in_progress":
                break
    cluster.nodes[0].kill()  # the node dies with the run under way; the client moves on
    run_id = first[0].json()["id"]
    assert [e.id for e in first] == [str(n) for n in range(1, len(first) + 1)]

    with httpx.Client(base_url=cluster.nodes[1].url, timeout=10) as http:
        resumed = _stream(
            http, f"/v1/threads/{thread.id}/runs/{run_id}/stream", {"Last-Event-ID": first[-1].id}
        )
        # The whole stream, read again from its start: the two parts are exactly it.
        whole = _stream(http, f"/v1/threads/{thread.id}/runs/{run_id}/stream", {}, after=0)
    assert resumed[-1].event == "done"
    assert [e.id for e in first + resumed[:-1]] == [e.id for e in whole[:-1]]
    assert [(e.event, e.data) for e in first + resumed] == [(e.event, e.data) for e in whole]
    names = [e.event for e in whole[:-1]]
    assert collapse(names) == TEXT_ANSWER
    text = "".join(
        part["text"]["value"]
        for e in whole
        if e.event == "thread.message.delta"
        for part in e.json()["delta"]["content"]
    )
    assert text == "You said: after the outage"

    # A stream resumed after its last event has nothing more to say.
    with httpx.Client(base_url=cluster.nodes[1].url, timeout=10) as http:
        assert [
            e.event
            for e in _stream(http, f"/v1/threads/{thread.id}/runs/{run_id}/stream", {}, after=len(whole) - 1)
        ] == ["done"]
        # A resume of a run that is not in the thread answers like a missing run.
        missing = http.get(f"/v1/threads/{thread.id}/runs/run_doesnotexist/stream", headers=BETA)
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "invalid_request_error"
        bad = http.get(
            f"/v1/threads/{thread.id}/runs/{run_id}/stream", headers={**BETA, "Last-Event-ID": "x"}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "Last-Event-ID"


def _stream(http: httpx.Client, path: str, headers: dict[str, str], after: int | None = None) -> list[SSE]:
    params = {} if after is None else {"after": after}
    with http.stream("GET", path, headers={**BETA, **headers}, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(read_sse(response.iter_lines()))


def test_a_cancel_on_one_node_stops_the_worker_on_another(cluster: Cluster) -> None:
    with cluster.sdk(0) as a, cluster.sdk(1) as b:
        assistant = a.beta.assistants.create(model="gpt-4o")
        thread = a.beta.threads.create(messages=[{"role": "user", "content": "/sleep 30\nnever"}])
        run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for_status(b, thread.id, run.id, "in_progress", timeout=10)
        # The operator's view, from the database: the run, and the worker that holds it.
        node = cluster.nodes[0]
        status = run_cli(["status"], node.data_dir, node.env)
        assert status.returncode == 0, status.stderr
        assert re.search(r"^  in_progress +1$", status.stdout, re.MULTILINE), status.stdout
        holder = _lease_owner(cluster.database_url, run.id)
        assert re.search(rf"^  {holder}  1 run\(s\)  lease \d+ s left$", status.stdout, re.MULTILINE)
        started = time.monotonic()
        cancelling = b.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        assert cancelling.status == "cancelling"
        final = wait_for_run(a, thread.id, run.id, timeout=10, interval=0.05)
        assert final.status == "cancelled"
        # The worker heard the cancel at once; it did not wait out the model's 30 s.
        assert time.monotonic() - started < 5


def test_a_killed_worker_s_run_is_completed_by_the_other(cluster: Cluster) -> None:
    with cluster.sdk(0) as a, cluster.sdk(1) as b:
        assistant = a.beta.assistants.create(model="gpt-4o")
        thread = a.beta.threads.create(messages=[{"role": "user", "content": "/sleep 2\nsurvive this"}])
        run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for_status(b, thread.id, run.id, "in_progress", timeout=10)
        holder = _lease_owner(cluster.database_url, run.id)
        victim = next(w for w in cluster.workers if w.id == holder)
        survivor = next(w for w in cluster.workers if w is not victim)
        victim.kill()
        final = wait_for_run(b, thread.id, run.id, timeout=20, interval=0.1)
        assert final.status == "completed", final
        assert final.last_error is None
        assert _lease_owner(cluster.database_url, run.id) is None
        assert f"took over run {run.id}" in survivor.log()
        # The turn was done again: one reply, one message step, no leftovers of the dead worker.
        assert text_of(only_assistant_reply(a, thread.id, run.id)) == "You said: survive this"
        steps = list(a.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
        assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]


def _lease_owner(database_url: str, run_id: str) -> str | None:
    async def read() -> str | None:
        import asyncpg

        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            value: Any = await conn.fetchval("SELECT lease_owner FROM runs WHERE id = $1", run_id)
            return value
        finally:
            await conn.close()

    return asyncio.run(read())


def test_nodes_and_workers_refuse_the_embedded_database(tmp_path: Path) -> None:
    worker = WorkerProcess(data_dir=tmp_path / "w")
    with pytest.raises(RuntimeError, match="needs a PostgreSQL database"):
        worker.start()
    assert worker.process is not None
    assert worker.process.returncode == 2
    node = Server(data_dir=tmp_path / "n", args=["--no-worker"])
    with pytest.raises(RuntimeError, match="needs a PostgreSQL database"):
        node.start()


def test_a_file_uploaded_through_one_node_is_read_and_searched_everywhere(cluster: Cluster) -> None:
    content = (
        "The lighthouse keeper of Vardø logs the aurora every night in a green notebook.\n" * 3
    ).encode() + bytes(range(256)) * 8192  # 2 MiB of binary after the text: several stored parts
    with cluster.sdk(0) as a, cluster.sdk(1) as b:
        uploaded = a.files.create(file=("keeper.txt", content), purpose="assistants")
        assert b.files.content(uploaded.id).content == content
        text_file = b.files.create(
            file=("keeper-notes.txt", b"The lighthouse keeper of Vardo writes in a green notebook."),
            purpose="assistants",
        )
        store = b.vector_stores.create(name="notes", file_ids=[text_file.id])
        deadline = time.monotonic() + 30
        while store.file_counts.in_progress and time.monotonic() < deadline:
            time.sleep(0.2)
            store = a.vector_stores.retrieve(store.id)
        assert store.file_counts.completed == 1, store
        assistant = a.beta.assistants.create(
            model="gpt-4o",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
        thread = b.beta.threads.create(
            messages=[{"role": "user", "content": "/search what does the lighthouse keeper write in?"}]
        )
        # Executed by a worker process, which reads the store the nodes wrote.
        run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        final = wait_for_run(b, thread.id, run.id, timeout=30)
        assert final.status == "completed", final.last_error
        reply = only_assistant_reply(a, thread.id, run.id)
        part = reply.content[0]
        assert part.type == "text"
        assert [x.file_citation.file_id for x in part.text.annotations if x.type == "file_citation"] == [
            text_file.id
        ]

"""Runs survive their server: a crashed or stopped worker's run is taken over on restart (or failed,
past the takeover limit), waiting runs go on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.harness import Server
from tests.run_support import (
    function_tool,
    make_sdk,
    only_assistant_reply,
    text_of,
    wait_for_run,
    wait_for_status,
)

FAST_RECOVERY = {"ASSISTD_RUN_LEASE_SECONDS": "1", "ASSISTD_WORKER_POLL_SECONDS": "0.2"}
# Interrupted runs are failed at once instead of being done again.
NO_TAKEOVER = {**FAST_RECOVERY, "ASSISTD_RUN_MAX_TAKEOVERS": "0"}


@pytest.fixture
def restart() -> Iterator[Callable[[Server], Server]]:
    """Starts a new server on a dead server's data dir (and settings); stopped after the test."""
    started: list[Server] = []

    def start(dead: Server) -> Server:
        assert dead.process is not None
        assert dead.process.poll() is not None, "the old server is still running"
        instance = Server(data_dir=dead.data_dir, env=dict(dead.env)).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.mark.backend("sqlite")
def test_run_of_a_killed_server_is_done_again_on_restart(
    start_server: Callable[..., Server], restart: Callable[[Server], Server]
) -> None:
    first = start_server(**FAST_RECOVERY)
    with make_sdk(first) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "/sleep 1\nback again"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for_status(client, thread.id, run.id, "in_progress", timeout=5)
        time.sleep(0.3)  # the answer's message and step exist, unfinished
    first.kill()

    second = restart(first)
    with make_sdk(second) as client:
        final = wait_for_run(client, thread.id, run.id, timeout=15, interval=0.1)
        assert final.status == "completed", final
        assert final.last_error is None
        assert "took over run" in second.log()
        # The interrupted turn left nothing behind: one answer, one step.
        assert text_of(only_assistant_reply(client, thread.id, run.id)) == "You said: back again"
        steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
        assert [(step.type, step.status) for step in steps] == [("message_creation", "completed")]


@pytest.mark.backend("sqlite")
def test_run_stopped_with_its_server_goes_on_at_the_next_start(
    start_server: Callable[..., Server], restart: Callable[[Server], Server]
) -> None:
    first = start_server(**FAST_RECOVERY, ASSISTD_SHUTDOWN_GRACE_SECONDS="0.2")
    with make_sdk(first) as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "/sleep 2\nafter the stop"}]
        )
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for_status(client, thread.id, run.id, "in_progress", timeout=5)
    first.stop()  # SIGTERM: the run does not finish within the grace time, and is handed back
    assert "Application shutdown complete" in first.log()  # it shut down, it did not die

    second = restart(first)
    with make_sdk(second) as client:
        final = wait_for_run(client, thread.id, run.id, timeout=15, interval=0.1)
        assert final.status == "completed", final
        assert text_of(only_assistant_reply(client, thread.id, run.id)) == "You said: after the stop"


@pytest.mark.backend("sqlite")
def test_run_of_a_killed_server_fails_as_interrupted_past_the_takeover_limit(
    start_server: Callable[..., Server], restart: Callable[[Server], Server]
) -> None:
    first = start_server(**NO_TAKEOVER)
    with make_sdk(first) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", name="survivor")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "/sleep 30\nnever"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for_status(client, thread.id, run.id, "in_progress", timeout=5)
    first.kill()
    assert first.process is not None
    assert first.process.returncode == -9

    second = restart(first)
    with make_sdk(second) as client:
        started = time.monotonic()
        final = wait_for_run(client, thread.id, run.id, timeout=15, interval=0.1)
        assert final.status == "failed", final
        assert time.monotonic() - started < 15
        assert final.last_error is not None
        assert final.last_error.code == "server_error"
        assert "interrupted" in final.last_error.message
        assert final.failed_at is not None
        assert final.completed_at is None
        assert final.expires_at is None
        steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
        assert all(step.status == "failed" for step in steps), steps
        replies = [m for m in client.beta.threads.messages.list(thread.id) if m.role == "assistant"]
        assert all(m.status == "incomplete" for m in replies), replies

        # The thread is unlocked, and the new server runs new runs.
        client.beta.threads.messages.create(thread.id, role="user", content="after the crash")
        again = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert wait_for_run(client, thread.id, again.id, timeout=10).status == "completed"
        assert text_of(only_assistant_reply(client, thread.id, again.id)) == "You said: after the crash"


@pytest.mark.backend("sqlite")
def test_queued_and_waiting_runs_go_on_after_a_crash(
    start_server: Callable[..., Server], restart: Callable[[Server], Server]
) -> None:
    # One worker slot: the second run is still queued when the server dies.
    first = start_server(**NO_TAKEOVER, ASSISTD_WORKER_CONCURRENCY="1")
    with make_sdk(first) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[function_tool("f")])
        waiting_thread = client.beta.threads.create(messages=[{"role": "user", "content": "/call f {}"}])
        waiting = client.beta.threads.runs.create(waiting_thread.id, assistant_id=assistant.id)
        waiting = wait_for_status(client, waiting_thread.id, waiting.id, "requires_action", timeout=5)
        busy_thread = client.beta.threads.create(messages=[{"role": "user", "content": "/sleep 30"}])
        busy = client.beta.threads.runs.create(busy_thread.id, assistant_id=assistant.id)
        wait_for_status(client, busy_thread.id, busy.id, "in_progress", timeout=5)
        queued_thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "queued before the crash"}]
        )
        queued = client.beta.threads.runs.create(queued_thread.id, assistant_id=assistant.id)
        assert client.beta.threads.runs.retrieve(queued.id, thread_id=queued_thread.id).status == "queued"
    first.kill()

    second = restart(first)
    with make_sdk(second) as client:
        assert wait_for_run(client, busy_thread.id, busy.id, timeout=15).status == "failed"
        done = wait_for_run(client, queued_thread.id, queued.id, timeout=15)
        assert done.status == "completed"
        assert (
            text_of(only_assistant_reply(client, queued_thread.id, queued.id))
            == "You said: queued before the crash"
        )

        still = client.beta.threads.runs.retrieve(waiting.id, thread_id=waiting_thread.id)
        assert still.status == "requires_action"
        call = waiting.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        client.beta.threads.runs.submit_tool_outputs(
            waiting.id, thread_id=waiting_thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}]
        )
        assert wait_for_run(client, waiting_thread.id, waiting.id, timeout=10).status == "completed"
        assert text_of(only_assistant_reply(client, waiting_thread.id, waiting.id)) == "f returned ok"

"""Shared helpers of the runs tests: bounded waits, event recording, raw SSE parsing.

Nothing here imports assistd: the runs tests drive the server only through the SDK and raw HTTP.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Run, Text, TextDelta

ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
TEST_BUDGET_S = 45.0  # no test may take longer than this, whatever hangs (conftest's _time_limit)


def function_tool(name: str, description: str = "") -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description or f"The {name} function",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }


def text_of(message: Message) -> str:
    assert message.content, f"message {message.id} has no content"
    part = message.content[0]
    assert part.type == "text", part
    return part.text.value


@contextmanager
def time_limit(seconds: float, what: str = "the call") -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``: bounds SDK helpers
    that have no deadline of their own (``create_and_poll`` polls forever). Nests: an outer limit goes on
    counting after the block."""

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    outer_remaining, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_remaining:
            elapsed = time.monotonic() - started
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - elapsed, 0.001))


def wait_for_run(
    client: openai.OpenAI,
    thread_id: str,
    run_id: str,
    until: Callable[[Run], bool] = lambda run: run.status in TERMINAL,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
) -> Run:
    """Retrieve the run until ``until`` holds (default: a terminal status); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if not seen or seen[-1] != run.status:
            seen.append(run.status)
        if until(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} not there after {timeout} s; statuses seen: {seen}")
        time.sleep(interval)


def wait_for_status(client: openai.OpenAI, thread_id: str, run_id: str, status: str, **kw: Any) -> Run:
    run = wait_for_run(client, thread_id, run_id, lambda r: r.status in {status} | TERMINAL, **kw)
    assert run.status == status, f"expected {status}, got {run.status} (last_error={run.last_error})"
    return run


async def await_run(
    aclient: openai.AsyncOpenAI,
    thread_id: str,
    run_id: str,
    *,
    within: float = 10.0,
    interval: float = 0.05,
) -> Run:
    deadline = time.monotonic() + within
    while True:
        run = await aclient.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in TERMINAL:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {within} s")
        await asyncio.sleep(interval)


def only_assistant_reply(client: openai.OpenAI, thread_id: str, run_id: str) -> Message:
    replies = [m for m in client.beta.threads.messages.list(thread_id, order="asc") if m.run_id == run_id]
    assert len(replies) == 1, [(m.id, m.content) for m in replies]
    return replies[0]


class RecordingHandler(AssistantEventHandler):
    """Records every event the SDK hands over, and the text deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[AssistantStreamEvent] = []
        self.deltas: list[str] = []
        self.texts_done: list[str] = []
        self.ended = False

    def on_event(self, event: AssistantStreamEvent) -> None:
        # A copy: the SDK builds its message snapshot in the created event's own object.
        self.events.append(event.model_copy(deep=True))

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta.value or "")

    def on_text_done(self, text: Text) -> None:
        self.texts_done.append(text.value)

    def on_end(self) -> None:
        self.ended = True

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]


# A run whose first turn uses the server's tools (file_search, code_interpreter) and whose second answers,
# without the delta events (their number varies).
SERVER_TOOL_THEN_ANSWER = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.completed",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]
# The events of a streamed run that answers with text (deltas shown once, see collapse).
TEXT_ANSWER = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]
DELTAS = ("thread.message.delta", "thread.run.step.delta")


def collapse(names: list[str], repeated: str = "thread.message.delta") -> list[str]:
    """The event names with each run of ``repeated`` events shown once (deltas come in any number)."""
    out: list[str] = []
    for name in names:
        if name == repeated and out and out[-1] == repeated:
            continue
        out.append(name)
    return out


@dataclass
class SSE:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def read_sse(lines: Iterator[str]) -> Iterator[SSE]:
    """Server-sent events from the lines of a response, as a standard SSE decoder sees them."""
    event, data, event_id = "", [], None
    for line in lines:
        if line == "":
            if event or data:
                yield SSE(event, "\n".join(data), event_id)
            event, data, event_id = "", [], None
        elif line.startswith(":"):
            continue
        elif line.startswith("id:"):
            event_id = line[len("id:") :].strip()
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].lstrip())
    if event or data:
        yield SSE(event, "\n".join(data), event_id)


BETA = {"OpenAI-Beta": "assistants=v2"}


def raw_stream(http: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    """A streaming POST through raw HTTP (a context manager giving the httpx response)."""
    return http.stream("POST", path, json=body, headers=BETA, timeout=10)


def make_sdk(server: Any, **kwargs: Any) -> openai.OpenAI:
    """A client of a dedicated server, as the fixtures make them: no retries, bounded requests."""
    options: dict[str, Any] = {"api_key": "sk-test", "max_retries": 0, "timeout": 15, **kwargs}
    return openai.OpenAI(base_url=f"{server.url}/v1", **options)

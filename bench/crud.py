"""CRUD latency of assistd against a floor: a bare Starlette app that returns the same JSON bytes.

Run: ``.venv/bin/python bench/crud.py [--requests N] [--concurrency C]``

Both servers run side by side in one run, as subprocesses served by uvicorn with the same settings
(``uvicorn.run(app, host, port, log_level="warning", timeout_keep_alive=30)``: loop and http
implementation "auto", one worker, nothing logged per request). assistd runs on SQLite in a fresh
temporary data dir. For every operation, one real response is captured from assistd first; the floor
then serves exactly those bytes for the same method and path shape, so the difference between the two
is what assistd does per request beyond HTTP and JSON transport.

The same client code (one ``httpx.AsyncClient`` per target, keep-alive, identical settings) drives
both. Each operation is warmed up on both targets, then measured in rounds that alternate between the
targets (and alternate which goes first), so machine noise hits both alike. The machine is noisy:
read the ratios, not the absolute times.

Server CPU per request comes from the server process's utime + stime (``/proc/<pid>/stat``, 10 ms
ticks, summed over rounds): unlike latency, it leaves out the client, which shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import (
    HEADERS,
    REQUEST_TIMEOUT_S,
    FloorRoute,
    Sample,
    ServerProcess,
    assistd_server,
    command_line,
    markdown_table,
    ms,
    running,
    start_floor,
    versions,
)

LIST_LIMIT = 20
# Enough objects that both list operations return a full page (limit=20, has_more=true) from the start.
SEED_OBJECTS = LIST_LIMIT + 5

ASSISTANT_BODY = json.dumps(
    {
        "model": "gpt-4o",
        "name": "bench assistant",
        "instructions": "You are a helpful assistant used in a benchmark.",
        "tools": [{"type": "code_interpreter"}],
        "metadata": {"purpose": "bench"},
    }
).encode()
MESSAGE_BODY = json.dumps({"role": "user", "content": "Hello, how are you today?"}).encode()


# -- the operations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    key: str  # how the floor app knows it
    label: str  # how the table names it
    method: str
    path: str  # concrete path used against both targets
    pattern: str  # Starlette route path served by the floor
    query: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def operations(assistant_id: str, thread_id: str) -> list[Operation]:
    limit = {"limit": str(LIST_LIMIT)}
    messages = f"/v1/threads/{thread_id}/messages"
    return [
        Operation(
            "create_assistant",
            "create assistant",
            "POST",
            "/v1/assistants",
            "/v1/assistants",
            body=ASSISTANT_BODY,
        ),
        Operation(
            "retrieve_assistant",
            "retrieve assistant",
            "GET",
            f"/v1/assistants/{assistant_id}",
            "/v1/assistants/{assistant_id}",
        ),
        Operation(
            "list_assistants", "list assistants (20)", "GET", "/v1/assistants", "/v1/assistants", query=limit
        ),
        Operation(
            "create_message",
            "create message",
            "POST",
            messages,
            "/v1/threads/{thread_id}/messages",
            body=MESSAGE_BODY,
        ),
        Operation(
            "list_messages",
            "list messages (20)",
            "GET",
            messages,
            "/v1/threads/{thread_id}/messages",
            query=limit,
        ),
    ]


async def send(client: httpx.AsyncClient, op: Operation) -> httpx.Response:
    return await client.request(op.method, op.path, params=op.query or None, content=op.body)


# -- capturing assistd's responses ----------------------------------------------------------------------


def capture(url: str) -> tuple[list[Operation], dict[str, bytes]]:
    """Seeds assistd so both lists return full pages, then records one real response per operation."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=REQUEST_TIMEOUT_S) as client:

        def call(method: str, path: str, body: bytes | None = None, **query: str) -> httpx.Response:
            response = client.request(method, path, params=query or None, content=body)
            if response.status_code != 200:
                raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
            return response

        for _ in range(SEED_OBJECTS):
            assistant_id = call("POST", "/v1/assistants", ASSISTANT_BODY).json()["id"]
        thread_id = call("POST", "/v1/threads", b"{}").json()["id"]
        for _ in range(SEED_OBJECTS):
            call("POST", f"/v1/threads/{thread_id}/messages", MESSAGE_BODY)

        ops = operations(assistant_id, thread_id)
        captured = {op.key: call(op.method, op.path, op.body, **op.query).content for op in ops}
    return ops, captured


def check_floor(url: str, ops: list[Operation], captured: dict[str, bytes]) -> None:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=REQUEST_TIMEOUT_S) as client:
        for op in ops:
            response = client.request(op.method, op.path, params=op.query or None, content=op.body)
            if response.status_code != 200 or response.content != captured[op.key]:
                raise RuntimeError(f"the floor does not answer {op.label} with assistd's bytes")


# -- measuring ----------------------------------------------------------------------------------------


async def burst(
    client: httpx.AsyncClient, op: Operation, count: int, concurrency: int, out: list[float] | None
) -> None:
    """``count`` requests of ``op``, ``concurrency`` at a time, each one checked for a 200."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            response = await send(client, op)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise RuntimeError(f"{op.label}: {response.status_code} {response.text[:500]}")
            if out is not None:
                out.append(elapsed)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())


async def measure(
    servers: dict[str, ServerProcess],
    ops: list[Operation],
    *,
    requests: int,
    concurrency: int,
    warmup: int,
    rounds: int,
) -> dict[str, dict[str, Sample]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    clients = {
        name: httpx.AsyncClient(base_url=server.url, headers=HEADERS, limits=limits, timeout=timeout)
        for name, server in servers.items()
    }
    results: dict[str, dict[str, Sample]] = {op.key: {name: Sample() for name in servers} for op in ops}
    sizes = [requests // rounds + (1 if i < requests % rounds else 0) for i in range(rounds)]
    names = list(servers)
    try:
        for op in ops:
            for name in names:
                await burst(clients[name], op, warmup, concurrency, None)
            for index, size in enumerate(sizes):
                order = names if index % 2 == 0 else names[::-1]
                for name in order:
                    sample = results[op.key][name]
                    cpu_before = servers[name].cpu_seconds()
                    started = time.perf_counter()
                    await burst(clients[name], op, size, concurrency, sample.latencies)
                    sample.wall += time.perf_counter() - started
                    sample.cpu += servers[name].cpu_seconds() - cpu_before
            print(f"  measured {op.label}", file=sys.stderr, flush=True)
    finally:
        for client in clients.values():
            await client.aclose()
    return results


# -- reporting ----------------------------------------------------------------------------------------


def table(ops: list[Operation], results: dict[str, dict[str, Sample]]) -> str:
    header = [
        "operation",
        "assistd mean / p50 / p99 ms",
        "floor mean / p50 / p99 ms",
        "assistd req/s",
        "floor req/s",
        "ratio mean latency",
        "ratio req/s",
        "server CPU ms/req assistd / floor",
        "ratio CPU",
    ]
    rows = []
    for op in ops:
        a, f = results[op.key]["assistd"], results[op.key]["floor"]
        cpu_ratio = f"{a.cpu / f.cpu:.1f}x" if f.cpu > 0 else "n/a"
        row = [
            op.label,
            f"{ms(a.mean)} / {ms(a.percentile(50))} / {ms(a.percentile(99))}",
            f"{ms(f.mean)} / {ms(f.percentile(50))} / {ms(f.percentile(99))}",
            f"{a.rps:.0f}",
            f"{f.rps:.0f}",
            f"**{a.mean / f.mean:.2f}x**",
            f"{f.rps / a.rps:.2f}x",
            f"{ms(a.cpu_per_request)} / {ms(f.cpu_per_request)}",
            cpu_ratio,
        ]
        rows.append(row)
    return markdown_table(header, rows)


def environment(concurrency: int, requests: int, warmup: int, rounds: int) -> str:
    return (
        f"{versions()}; {requests} measured requests per operation per target "
        f"in {rounds} alternating rounds, {warmup} warm-up requests, concurrency {concurrency}"
    )


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per operation per target (2000)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight per target (1)")
    parser.add_argument(
        "--warmup", type=int, default=200, help="warm-up requests per operation per target (200)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per operation (10)")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    args.rounds = min(args.rounds, args.requests)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        root = Path(tmp)
        assistd = assistd_server(root)
        with running(assistd):
            ops, captured = capture(assistd.url)
            routes: list[FloorRoute] = [
                {
                    "pattern": op.pattern,
                    "method": op.method,
                    "body": captured[op.key].decode("utf-8"),
                    "media_type": "application/json",
                }
                for op in ops
            ]
            floor = start_floor(root, routes)
            with running(floor):
                check_floor(floor.url, ops, captured)
                print(f"assistd on {assistd.url}, floor on {floor.url}", file=sys.stderr, flush=True)
                results = asyncio.run(
                    measure(
                        {"assistd": assistd, "floor": floor},
                        ops,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        warmup=args.warmup,
                        rounds=args.rounds,
                    )
                )
            # Both servers logged nothing per request; anything in their logs is worth a look.
            for server in (assistd, floor):
                lines = server.log().splitlines()
                if len(lines) > 20:
                    print(f"warning: {server.name} logged {len(lines)} lines", file=sys.stderr)

    print(f"### CRUD vs floor, concurrency {args.concurrency}\n")
    print(f"Command: `{command_line()}`\n")
    print(environment(args.concurrency, args.requests, args.warmup, args.rounds) + "\n")
    print(table(ops, results))
    print(
        "\nratio = assistd / floor (mean latency; floor req/s / assistd req/s; server CPU per request). "
        f"Took {time.monotonic() - started:.0f} s."
    )


if __name__ == "__main__":
    main()

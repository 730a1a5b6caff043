"""Run turnaround and run throughput of assistd with the scripted model, against a floor.

Run: ``.venv/bin/python bench/runs.py [--runs N] [--loads 100,1000] [--worker-concurrency C]``

Every run is ``POST /v1/threads/{id}/runs`` on a thread of its own that holds one user message
(threads are created beforehand, untimed), answered by the built-in scripted model ("You said: ...",
10 tokens). assistd runs on SQLite in a fresh temporary data dir with ``ASSISTD_LOG_LEVEL=warning``;
its stdout/stderr go to a log file whose tail is printed when anything goes wrong.

(a) Turnaround, one run at a time, create -> completed, in two modes:

* polling: POST the run, then GET it with no sleep until its status is ``completed``;
* streaming: POST it with ``"stream": true`` and read the SSE stream up to ``event: done``.

The floor is the bare Starlette app of ``bench/common.py`` answering the same HTTP round trips with
assistd's bytes: for polling, the POST answered with a captured queued run and as many GETs as assistd
needed (replaying the GET counts of assistd's runs in the same round) answered with a captured completed run;
for streaming, one POST answered in one response with a captured SSE stream of the same size. The
client code is the same for both (it parses every polled run and scans every SSE line). "Own overhead
per run" is assistd's turnaround minus the floor's for the same round trips. Rounds alternate between
the targets, as in ``bench/crud.py``; for streaming also which goes first, while for polling assistd
goes first in every round so that the floor replays exactly that round's GET counts.

(b) Throughput: for each load N, a fresh assistd; N threads are created (untimed), then N runs are
started at once (asyncio; 200 connections in all, as 20 ``httpx.AsyncClient`` of 10 connections
that never get more requests at once than they have connections, see CLIENTS), each polled every
50 ms (``--poll-interval-ms``) until it is terminal. Reported: wall time from the first POST to the
last terminal status, runs/s, errors (any non-200, transport error, timeout, or run that ended other
than ``completed``), the turnaround percentiles of the runs, and server and client CPU.
Meanwhile ``/metrics`` is scraped every half second, as Prometheus would (more often than it usually
does); the table after (b) sets what the scrapes showed beside what the client counted itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    mean,
    ms,
    percentile,
    report_log,
    running,
    start_floor,
    versions,
)
from prometheus_client.parser import text_string_to_metric_families

MESSAGE = "Hello, how are you today?"
THREAD_BODY = json.dumps({"messages": [{"role": "user", "content": MESSAGE}]}).encode()
ASSISTANT_BODY = json.dumps(
    {"model": "gpt-4o", "name": "bench assistant", "instructions": "You are a helpful assistant."}
).encode()
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"})
DONE_LINE = "event: done"
COMPLETED_LINE = "event: thread.run.completed"
# The floor's paths; the streaming create gets a path of its own since the floor does not read bodies.
FLOOR_CREATE = "/v1/threads/{thread_id}/runs"
FLOOR_RETRIEVE = "/v1/threads/{thread_id}/runs/{run_id}"
FLOOR_STREAM = "/v1/threads/{thread_id}/runs/stream"
POLL_INTERVAL_MS = 50  # (b) default; (a) polls with no sleep
CONNECTIONS = 200  # (b): client connections in all
# (b): the connections are split over this many clients, and no client ever has more requests in flight
# than connections. On every request event, httpcore's pool pairs each of its requests with each of its
# connections (and polls each idle socket): with one 200-connection pool and 1,000 waiting requests the
# client spent most of a core on that alone and was the bottleneck; it costs per_client**2.
CLIENTS = 20
SETUP_CONCURRENCY = 32  # creating threads, untimed
# A run not terminal by then counts as an error: assistd's run TTL (600 s by default) plus a minute for
# its sweeper to expire it, so that a run the server would still finish is not counted as failed.
RUN_TIMEOUT_S = 660.0
THROUGHPUT_TIMEOUT_S = 900.0  # a whole load level
SCRAPE_INTERVAL_S = 0.5  # (b): /metrics
RUN_ROUTE = "/v1/threads/{thread_id}/runs"
RUN_RETRIEVE_ROUTE = "/v1/threads/{thread_id}/runs/{run_id}"


class BenchError(RuntimeError):
    pass


def run_body(assistant_id: str, *, stream: bool = False) -> bytes:
    body: dict[str, Any] = {"assistant_id": assistant_id}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def client(url: str, connections: int, timeout: float = REQUEST_TIMEOUT_S) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers=HEADERS,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(timeout),
    )


def checked(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code != 200:
        raise BenchError(f"{what} -> {response.status_code}: {response.text[:500]}")
    return response


async def create_assistant(http: httpx.AsyncClient) -> str:
    response = checked(await http.post("/v1/assistants", content=ASSISTANT_BODY), "create assistant")
    return str(response.json()["id"])


async def create_threads(http: httpx.AsyncClient, count: int) -> list[str]:
    """``count`` threads with one user message each, SETUP_CONCURRENCY at a time."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one() -> str:
        async with gate:
            response = checked(await http.post("/v1/threads", content=THREAD_BODY), "create thread")
            return str(response.json()["id"])

    return list(await asyncio.gather(*(one() for _ in range(count))))


# -- (a) one run at a time ----------------------------------------------------------------------------


async def poll_assistd(http: httpx.AsyncClient, thread_id: str, body: bytes) -> tuple[float, int]:
    """Turnaround (s) of one run created and polled with no sleep, and the GETs it took."""
    async with asyncio.timeout(RUN_TIMEOUT_S):
        started = time.perf_counter()
        response = checked(await http.post(f"/v1/threads/{thread_id}/runs", content=body), "create run")
        run = response.json()
        path = f"/v1/threads/{thread_id}/runs/{run['id']}"
        gets = 0
        while run["status"] not in TERMINAL:
            run = checked(await http.get(path), "retrieve run").json()
            gets += 1
        elapsed = time.perf_counter() - started
    if run["status"] != "completed":
        raise BenchError(f"run {run['id']} ended {run['status']}: {run.get('last_error')}")
    return elapsed, gets


async def poll_floor(http: httpx.AsyncClient, thread_id: str, body: bytes, gets: int) -> float:
    """The same round trips against the floor: one POST and ``gets`` GETs, each parsed."""
    async with asyncio.timeout(RUN_TIMEOUT_S):
        started = time.perf_counter()
        run = checked(await http.post(f"/v1/threads/{thread_id}/runs", content=body), "create").json()
        path = f"/v1/threads/{thread_id}/runs/{run['id']}"
        for _ in range(gets):
            run = checked(await http.get(path), "retrieve").json()
        elapsed = time.perf_counter() - started
    if run["status"] != "completed":
        raise BenchError("the floor answered a run that is not completed")
    return elapsed


async def stream_run(http: httpx.AsyncClient, path: str, body: bytes) -> tuple[float, int]:
    """Turnaround (s) of one streamed run, read up to ``event: done``, and the bytes received."""
    completed = False
    size = 0
    async with asyncio.timeout(RUN_TIMEOUT_S):
        started = time.perf_counter()
        async with http.stream("POST", path, content=body) as response:
            if response.status_code != 200:
                await response.aread()
                checked(response, "create run (stream)")
            async for line in response.aiter_lines():
                size += len(line) + 1
                if line == COMPLETED_LINE:
                    completed = True
                elif line == DONE_LINE:
                    break
        elapsed = time.perf_counter() - started
    if not completed:
        raise BenchError(f"the stream of {path} ended without thread.run.completed")
    return elapsed, size


@dataclass
class Turnaround:
    samples: dict[str, Sample] = field(default_factory=lambda: {"assistd": Sample(), "floor": Sample()})
    gets: list[int] = field(default_factory=list)  # assistd polling: GETs per measured run
    floor_gets: list[int] = field(default_factory=list)  # what the floor replayed
    sizes: list[int] = field(default_factory=list)  # assistd streaming: bytes per run


class TurnaroundBench:
    """(a): runs one at a time against assistd or the floor, in one mode, recording into a Turnaround."""

    FLOOR_THREAD = "thread_floor"

    def __init__(self, clients: dict[str, httpx.AsyncClient], threads: list[str], assistant_id: str) -> None:
        self.clients = clients
        self.threads = threads  # fresh assistd threads, one per run
        self.plain = run_body(assistant_id)
        self.streamed = run_body(assistant_id, stream=True)
        self.latest_gets: list[int] = []  # GETs per run of assistd's latest polling batch

    async def batch(self, mode: str, name: str, count: int, out: Turnaround | None) -> None:
        http = self.clients[name]
        gets_now: list[int] = []
        for index in range(count):
            if name == "assistd" and mode == "polling":
                elapsed, gets = await poll_assistd(http, self.threads.pop(), self.plain)
                gets_now.append(gets)
            elif name == "assistd":
                path = f"/v1/threads/{self.threads.pop()}/runs"
                elapsed, size = await stream_run(http, path, self.streamed)
                if out is not None:
                    out.sizes.append(size)
            elif mode == "polling":
                gets = self.latest_gets[index % len(self.latest_gets)]
                elapsed = await poll_floor(http, self.FLOOR_THREAD, self.plain, gets)
                if out is not None:
                    out.floor_gets.append(gets)
            else:
                path = FLOOR_STREAM.format(thread_id=self.FLOOR_THREAD)
                elapsed, _ = await stream_run(http, path, self.streamed)
            if out is not None:
                out.samples[name].latencies.append(elapsed)
        if gets_now:
            self.latest_gets = gets_now
            if out is not None:
                out.gets.extend(gets_now)


async def measure_turnaround(
    assistd: ServerProcess, floor: ServerProcess, assistant_id: str, *, runs: int, warmup: int, rounds: int
) -> dict[str, Turnaround]:
    servers = {"assistd": assistd, "floor": floor}
    clients = {name: client(server.url, 1) for name, server in servers.items()}
    results = {"polling": Turnaround(), "streaming": Turnaround()}
    sizes = [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]
    try:
        threads = await create_threads(clients["assistd"], 2 * (runs + warmup))
        bench = TurnaroundBench(clients, threads, assistant_id)
        for mode, result in results.items():
            await bench.batch(mode, "assistd", warmup, None)
            await bench.batch(mode, "floor", warmup, None)
            for index, size in enumerate(sizes):
                # Polling: assistd first in every round, so that the floor replays the GET counts of
                # the same round (same total round trips); streaming alternates which goes first.
                first_assistd = mode == "polling" or index % 2 == 0
                for name in ("assistd", "floor") if first_assistd else ("floor", "assistd"):
                    sample = result.samples[name]
                    cpu_before = servers[name].cpu_seconds()
                    started = time.perf_counter()
                    await bench.batch(mode, name, size, result)
                    sample.wall += time.perf_counter() - started
                    sample.cpu += servers[name].cpu_seconds() - cpu_before
            print(f"  measured {mode}", file=sys.stderr, flush=True)
    finally:
        for http in clients.values():
            await http.aclose()
    return results


def capture_floor_routes(url: str, assistant_id: str) -> list[FloorRoute]:
    """One real polling run (its queued and completed bodies) and one real SSE stream from assistd."""

    async def capture() -> list[FloorRoute]:
        async with client(url, 1) as http:
            first, second = await create_threads(http, 2)
            queued = checked(
                await http.post(f"/v1/threads/{first}/runs", content=run_body(assistant_id)), "create run"
            )
            path = f"/v1/threads/{first}/runs/{queued.json()['id']}"
            done = checked(await http.get(path), "retrieve run")
            while done.json()["status"] not in TERMINAL:
                done = checked(await http.get(path), "retrieve run")
            async with http.stream(
                "POST", f"/v1/threads/{second}/runs", content=run_body(assistant_id, stream=True)
            ) as response:
                sse = (await response.aread()).decode("utf-8")
        if done.json()["status"] != "completed" or COMPLETED_LINE not in sse:
            raise BenchError("capturing the floor's bodies: a run did not complete")
        return [
            {
                "pattern": FLOOR_CREATE,
                "method": "POST",
                "body": queued.text,
                "media_type": "application/json",
            },
            {"pattern": FLOOR_RETRIEVE, "method": "GET", "body": done.text, "media_type": "application/json"},
            {"pattern": FLOOR_STREAM, "method": "POST", "body": sse, "media_type": "text/event-stream"},
        ]

    return asyncio.run(capture())


def turnaround_table(results: dict[str, Turnaround]) -> str:
    header = [
        "mode",
        "HTTP round trips per run",
        "assistd mean / p50 / p99 ms",
        "floor mean / p50 / p99 ms",
        "own overhead per run, mean (p50) ms",
        "server CPU ms/run assistd / floor",
    ]
    rows = []
    for mode, result in results.items():
        a, f = result.samples["assistd"], result.samples["floor"]
        if mode == "polling":
            gets, floor_gets = (mean([float(n) for n in ns]) for ns in (result.gets, result.floor_gets))
            trips = f"1 POST + {gets:.2f} GETs (floor: {floor_gets:.2f})"
        else:
            trips = f"1 POST, {mean([float(s) for s in result.sizes]) / 1024:.1f} KiB of SSE"
        row = [
            mode,
            trips,
            f"{ms(a.mean)} / {ms(a.percentile(50))} / {ms(a.percentile(99))}",
            f"{ms(f.mean)} / {ms(f.percentile(50))} / {ms(f.percentile(99))}",
            f"**{ms(a.mean - f.mean)}** ({ms(a.percentile(50) - f.percentile(50))})",
            f"{ms(a.cpu_per_request)} / {ms(f.cpu_per_request)}",
        ]
        rows.append(row)
    return markdown_table(header, rows)


# -- (b) many runs at once ----------------------------------------------------------------------------


@dataclass
class Scrapes:
    """What /metrics said during a load: peaks of the gauges, and the counters of the last scrape."""

    count: int = 0
    failures: int = 0
    peak_queued: float = 0.0
    peak_in_progress: float = 0.0
    last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the last scrape's samples of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            value for (sample, tags), value in self.last.items() if sample == name and wanted <= set(tags)
        )

    def take(self, text: str) -> None:
        self.count += 1
        self.last = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        self.peak_queued = max(self.peak_queued, self.value("assistd_run_queue_depth"))
        self.peak_in_progress = max(self.peak_in_progress, self.value("assistd_runs", status="in_progress"))


async def scrape_metrics(url: str, scrapes: Scrapes, stop: asyncio.Event) -> None:
    """Scrapes /metrics until ``stop``, then once more (the counters after the last run)."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        while True:
            stopping = stop.is_set()
            try:
                response = await http.get("/metrics")
                response.raise_for_status()
                scrapes.take(response.text)
            except httpx.HTTPError:
                scrapes.failures += 1
            if stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SCRAPE_INTERVAL_S)


@dataclass
class Load:
    runs: int
    worker_concurrency: str
    poll_ms: int
    wall: float = 0.0
    cpu: float = 0.0  # server CPU seconds during the load
    client_cpu: float = 0.0  # this process's CPU seconds during the load (same 2 cores)
    turnarounds: list[float] = field(default_factory=list)  # completed runs only
    creates: list[float] = field(default_factory=list)  # POST latency, successful creates
    gets: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # a few error messages, verbatim
    scrapes: Scrapes = field(default_factory=Scrapes)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {detail[:300]}")


@dataclass
class Gate:
    """A client that is never asked for more requests at once than it has connections."""

    http: httpx.AsyncClient
    slots: asyncio.Semaphore

    async def request(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        async with self.slots:
            return await self.http.request(method, path, content=content)


async def one_polled_run(gate: Gate, thread_id: str, body: bytes, load: Load, interval: float) -> None:
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            started = time.perf_counter()
            response = await gate.request("POST", f"/v1/threads/{thread_id}/runs", body)
            if response.status_code != 200:
                load.error(f"create {response.status_code}", response.text)
                return
            load.creates.append(time.perf_counter() - started)
            run = response.json()
            path = f"/v1/threads/{thread_id}/runs/{run['id']}"
            while run["status"] not in TERMINAL:
                await asyncio.sleep(interval)
                response = await gate.request("GET", path)
                load.gets += 1
                if response.status_code != 200:
                    load.error(f"retrieve {response.status_code}", response.text)
                    return
                run = response.json()
            elapsed = time.perf_counter() - started
    except TimeoutError:
        load.error("run timeout", f"not terminal after {RUN_TIMEOUT_S:.0f} s")
        return
    except httpx.HTTPError as error:
        load.error(type(error).__name__, repr(error))
        return
    if run["status"] != "completed":
        load.error(f"run {run['status']}", json.dumps(run.get("last_error")))
        return
    load.turnarounds.append(elapsed)


async def measure_load(server: ServerProcess, n: int, worker_concurrency: str, poll_ms: int) -> Load:
    load = Load(n, worker_concurrency, poll_ms)
    per_client = CONNECTIONS // CLIENTS
    gates = [
        Gate(client(server.url, per_client, timeout=60.0), asyncio.Semaphore(per_client))
        for _ in range(CLIENTS)
    ]
    try:
        assistant_id = await create_assistant(gates[0].http)
        threads = await create_threads(gates[0].http, n)
        body = run_body(assistant_id)
        cpu_before, client_before = server.cpu_seconds(), time.process_time()
        stop_scraping = asyncio.Event()
        scraper = asyncio.create_task(scrape_metrics(server.url, load.scrapes, stop_scraping))
        started = time.perf_counter()
        async with asyncio.timeout(THROUGHPUT_TIMEOUT_S):
            await asyncio.gather(
                *(
                    one_polled_run(gates[index % CLIENTS], thread_id, body, load, poll_ms / 1000)
                    for index, thread_id in enumerate(threads)
                )
            )
        load.wall = time.perf_counter() - started
        load.cpu = server.cpu_seconds() - cpu_before
        load.client_cpu = time.process_time() - client_before
        stop_scraping.set()
        await scraper
    finally:
        for gate in gates:
            await gate.http.aclose()
    return load


def load_table(loads: list[Load]) -> str:
    header = [
        "concurrent runs",
        "worker concurrency",
        "poll interval ms",
        "wall s",
        "runs/s",
        "errors",
        "turnaround p50 / p99 ms",
        "create POST p50 / p99 ms",
        "GETs per run",
        "requests/s served",
        "server CPU ms/run",
        "CPU busy server / client",
    ]
    rows = []
    for load in loads:
        errors = sum(load.errors.values())
        kinds = ", ".join(f"{kind}: {count}" for kind, count in load.errors.items())
        done = load.turnarounds
        creates = load.creates
        row = [
            f"{load.runs}",
            load.worker_concurrency,
            f"{load.poll_ms}",
            f"{load.wall:.2f}",
            f"**{load.runs / load.wall:.1f}**",
            f"**{errors}**" + (f" ({kinds})" if errors else ""),
            f"{ms(percentile(done, 50))} / {ms(percentile(done, 99))}" if done else "n/a",
            f"{ms(percentile(creates, 50))} / {ms(percentile(creates, 99))}" if creates else "n/a",
            f"{load.gets / load.runs:.1f}",
            f"{(load.runs + load.gets) / load.wall:.0f}",
            f"{ms(load.cpu / load.runs)}",
            f"{load.cpu / load.wall:.0%} / {load.client_cpu / load.wall:.0%}",
        ]
        rows.append(row)
    return markdown_table(header, rows, left=0)


def metrics_table(loads: list[Load]) -> str:
    """Each load's scrapes beside the client's own counts: the counters must agree with them."""
    header = [
        "concurrent runs",
        "scrapes (failed)",
        "run creates 200: counted / client",
        "run retrievals 200: counted / client",
        "runs completed: gauge / client",
        "model calls (histogram count)",
        "model tokens prompt / completion",
        "peak queued / in_progress",
    ]
    rows = []
    for load in loads:
        seen = load.scrapes
        requests = "assistd_http_requests_total"
        row = [
            f"{load.runs}",
            f"{seen.count} ({seen.failures})",
            f"{seen.value(requests, method='POST', route=RUN_ROUTE, status='200'):.0f} / {len(load.creates)}",
            f"{seen.value(requests, method='GET', route=RUN_RETRIEVE_ROUTE, status='200'):.0f} / {load.gets}",
            f"{seen.value('assistd_runs', status='completed'):.0f} / {len(load.turnarounds)}",
            f"{seen.value('assistd_model_call_duration_seconds_count'):.0f}",
            f"{seen.value('assistd_model_tokens_total', direction='prompt'):.0f} / "
            f"{seen.value('assistd_model_tokens_total', direction='completion'):.0f}",
            f"{seen.peak_queued:.0f} / {seen.peak_in_progress:.0f}",
        ]
        rows.append(row)
    return markdown_table(header, rows, left=0)


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=300, help="(a) measured runs per mode per target (300)")
    parser.add_argument("--warmup", type=int, default=30, help="(a) warm-up runs per mode per target (30)")
    parser.add_argument("--rounds", type=int, default=10, help="(a) alternating rounds per mode (10)")
    parser.add_argument(
        "--loads", default="100,1000", help="(b) concurrent runs, comma-separated; empty to skip (100,1000)"
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="(b) ASSISTD_WORKER_CONCURRENCY of the servers under load (default: assistd's default)",
    )
    parser.add_argument(
        "--poll-interval-ms",
        type=int,
        default=POLL_INTERVAL_MS,
        help=f"(b) sleep between two GETs of a run ({POLL_INTERVAL_MS})",
    )
    parser.add_argument("--skip-turnaround", action="store_true", help="skip (a)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rounds < 1 or args.warmup < 1:
        parser.error("--runs, --rounds and --warmup must be at least 1")
    args.rounds = min(args.rounds, args.runs)
    try:
        args.loads = [int(n) for n in args.loads.split(",") if n.strip()]
    except ValueError:
        parser.error("--loads takes comma-separated integers")
    if args.poll_interval_ms < 0:
        parser.error("--poll-interval-ms must not be negative")
    if any(n < 1 for n in args.loads):
        parser.error("--loads must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    turnaround: dict[str, Turnaround] | None = None
    loads: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="assistd-bench-runs-") as tmp:
        root = Path(tmp)
        if not args.skip_turnaround:
            assistd = assistd_server(root)
            with running(assistd):
                try:
                    assistant_id = asyncio.run(_assistant(assistd.url))
                    floor = start_floor(root, capture_floor_routes(assistd.url, assistant_id))
                    with running(floor):
                        print(f"assistd on {assistd.url}, floor on {floor.url}", file=sys.stderr, flush=True)
                        turnaround = asyncio.run(
                            measure_turnaround(
                                assistd,
                                floor,
                                assistant_id,
                                runs=args.runs,
                                warmup=args.warmup,
                                rounds=args.rounds,
                            )
                        )
                except BaseException:
                    report_log(assistd, always=True)
                    raise
                report_log(assistd, always=False)

        env = {}
        concurrency = "64 (default)"
        if args.worker_concurrency is not None:
            env["ASSISTD_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
            concurrency = str(args.worker_concurrency)
        for n in args.loads:
            server = assistd_server(root, env, name=f"assistd-load-{n}")
            with running(server):
                try:
                    load = asyncio.run(measure_load(server, n, concurrency, args.poll_interval_ms))
                except BaseException:
                    report_log(server, always=True)
                    raise
                loads.append(load)
                print(f"  measured {n} concurrent runs", file=sys.stderr, flush=True)
                if load.errors:
                    print("\n".join(load.examples), file=sys.stderr)
                report_log(server, always=bool(load.errors))

    print("### Runs\n")
    print(f"Command: `{command_line()}`\n")
    parts = [f"{versions()}; scripted model"]
    if turnaround is not None:
        parts.append(
            f"(a) {args.runs} measured runs per mode per target in {args.rounds} alternating rounds "
            f"after {args.warmup} warm-up runs, one at a time"
        )
    if loads:
        parts.append(
            f"(b) {CONNECTIONS} client connections ({CLIENTS} clients), "
            f"poll interval {args.poll_interval_ms} ms"
        )
    print("; ".join(parts) + "\n")
    if turnaround is not None:
        print("(a) Turnaround create -> completed, one run at a time\n")
        print(turnaround_table(turnaround))
        print("\nown overhead = assistd - floor for the same round trips.\n")
    if loads:
        print("(b) Many runs at once\n")
        print(load_table(loads))
        print(
            "\nwall = first POST to last terminal status; runs/s = runs / wall; CPU busy = CPU seconds / wall"
            " (100% = one core).\n"
        )
        print(f"/metrics scraped every {SCRAPE_INTERVAL_S} s during (b); counted = the scraped counter\n")
        print(metrics_table(loads))
        print()
    print(f"Took {time.monotonic() - started:.0f} s.")


async def _assistant(url: str) -> str:
    async with client(url, 1) as http:
        return await create_assistant(http)


if __name__ == "__main__":
    main()

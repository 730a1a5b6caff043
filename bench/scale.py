"""Scale-out on PostgreSQL: run throughput of 1 API node + 1 worker against 2 + 2, and the latency of
run events that cross processes, with the scripted model.

Run: ``.venv/bin/python bench/scale.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
[--clients 32] [--duration 15] [--rounds 3] [--warmup 2] [--modes polled,streamed] [--single-runs 100]
[--worker-concurrency N] [--keep-logs DIR]`` (about 3 minutes)

A *cluster* is ``assistd serve --no-worker`` API nodes and ``assistd worker`` processes sharing one
PostgreSQL database (made here, migrated once with ``assistd migrate``, dropped at the end), each
process with a data dir of its own; nodes log at warning (uvicorn's access log stays silent), workers
at info (their start line says they are up; they also log one line per run). Every run is executed by
a worker process, never by a node.

(a) Throughput: completed runs per second of (1) 1 node + 1 worker and (2) 2 nodes + 2 workers, each on
a fresh database. ``--clients`` concurrent clients, each with the official ``openai`` SDK
(``AsyncOpenAI``, one per node, no retries), loop: ``threads.create_and_run`` with one user message,
then until the run is terminal either

* polled: ``runs.retrieve`` every 20 ms (``--poll-ms``; the ``openai-poll-after-ms`` hint is ignored), or
* streamed: ``stream=True``, the SDK's event stream read to its end.

Each client sends its requests to the nodes in turn (round-robin; a streamed run goes to one node).
``--rounds`` rounds alternate the two setups (which goes first alternating); in each round the setup's
processes are started afresh on its database (only one cluster holds connections at a time: PostgreSQL
allows 100, shared with whatever else runs), and measured in each mode in turn (which goes first
alternating too): new clients, ``--warmup`` seconds unmeasured, a window of ``--duration / --rounds``
seconds, then the clients finish the run they are in and stop. A run counts when the client sees it
``completed`` within the window.

CPU time over each window, from ``/proc``: every process on the machine is sampled every 0.5 s and
put in a group: the nodes, the workers, the PostgreSQL backends of the benchmark's database (by their
process title), the rest of PostgreSQL (background processes, other databases), this process (the load
generator), other processes (the busiest are named), the machine's interrupt time, and what is left
of the machine's busy time (``/proc/stat``): processes that exited between two samples. Transactions
in the benchmark's database come from ``pg_stat_database``, connections from the process titles.

Event latency under load: in the same windows, one more client (the *probe*, raw HTTP with httpx)
streams runs from node 1, one after the other (``POST /v1/threads/runs`` with ``"stream": true``),
and notes when each SSE event arrives (``time.time()`` once its blank line is read) with its ``id:``,
which is the event's ``seq`` in ``run_events``. After the round, the events' ``created_at`` (the
writer's ``time.time()`` as it inserts them, before its commit) are read from the database with asyncpg:
latency = arrival - created_at. Probe runs are not counted in the throughput.

(b) Single runs, one at a time: ``POST /v1/threads/{id}/runs`` with ``"stream": true`` on a thread of
its own (made untimed), timed from the request to the ``thread.run.completed`` event, on (1) the
embedded default, ``assistd serve`` on SQLite, one process; (2) ``assistd serve`` on PostgreSQL, one
process that executes runs itself (events still go through ``run_events``); (3) the cluster of 2 nodes
and 2 workers, streamed from node 1 and executed by a worker. ``--single-runs`` per target after 10
warm-up runs, in 5 rounds whose order rotates. The event latency at light load is that of (2) and (3).

At the end, the processes' logs are read: their errors and warnings are summed up in the report (and
printed whole on stderr). Exit status 1 if any run failed (an HTTP or transport error, an exception of
the SDK, a timeout, or a run that ended other than ``completed``), or a run was left unfinished in a
database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
from common import (
    CLOCK_TICKS,
    HEADERS,
    HOST,
    LOG_LEVEL,
    ServerProcess,
    base_env,
    command_line,
    free_port,
    markdown_table,
    mean,
    ms,
    percentile,
    versions,
)
from openai.types.beta.thread_create_and_run_params import Thread as ThreadParam

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MESSAGE = "Hello, how are you today?"
THREAD: ThreadParam = {"messages": [{"role": "user", "content": MESSAGE}]}
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"})
STREAM_FAILURES = frozenset(
    {
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
        "error",
    }
)
# Events of a streamed run that the API node writes (in the transaction that creates the run); a
# worker writes all the others.
NODE_EVENTS = frozenset({"thread.created", "thread.run.created", "thread.run.queued"})
RUN_TIMEOUT_S = 40.0  # a run not terminal by then is an error (normal: under 5 s at the p99)
DRAIN_TIMEOUT_S = 90.0  # the clients finishing their last run after a window
SAMPLE_S = 0.5  # PostgreSQL backends' CPU
SINGLE_WARMUP = 10
SINGLE_ROUNDS = 5
SETUPS = {"1+1": (1, 1), "2+2": (2, 2)}  # (nodes, workers)
SETUP_NAMES = {"1+1": "1 node + 1 worker", "2+2": "2 nodes + 2 workers"}
# Log lines that say nothing is wrong: the open-mode warning, a worker's start.
BENIGN_LOG = ("open mode, any bearer key", "executing up to")


class BenchError(RuntimeError):
    pass


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- PostgreSQL ---------------------------------------------------------------------------------------


@dataclass
class BenchDatabase:
    admin_url: str
    name: str

    @property
    def dsn(self) -> str:
        """For asyncpg."""
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{self.name}"))

    @property
    def url(self) -> str:
        """For ASSISTD_DATABASE_URL."""
        return urlunsplit(
            urlsplit(self.admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{self.name}")
        )


async def _admin(admin_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str) -> BenchDatabase:
    database = BenchDatabase(admin_url, f"assistd_bench_scale_{secrets.token_hex(4)}")
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{database.name}"'))
    return database


def drop_database(database: BenchDatabase) -> None:
    asyncio.run(_admin(database.admin_url, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))


async def event_times(database: BenchDatabase, run_ids: list[str]) -> dict[tuple[str, int], float]:
    """``run_events.created_at`` of the runs' events, by (run id, seq)."""
    import asyncpg

    if not run_ids:
        return {}
    conn = await asyncpg.connect(database.dsn)
    try:
        rows = await conn.fetch(
            "SELECT run_id, seq, created_at FROM run_events WHERE run_id = ANY($1::text[])", run_ids
        )
    finally:
        await conn.close()
    return {(row["run_id"], row["seq"]): row["created_at"] for row in rows}


async def transactions(database: BenchDatabase) -> int:
    """Transactions committed and rolled back in the database so far (pg_stat_database: each backend
    reports its own at the end of a transaction, at most once a second)."""
    import asyncpg

    conn = await asyncpg.connect(database.dsn)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database.name
        )
    finally:
        await conn.close()
    return int(value or 0)


async def run_statuses(database: BenchDatabase) -> Counter[str]:
    import asyncpg

    conn = await asyncpg.connect(database.dsn)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM runs GROUP BY status")
    finally:
        await conn.close()
    return Counter({row["status"]: int(row["n"]) for row in rows})


# -- processes ----------------------------------------------------------------------------------------


class WorkerProcess(ServerProcess):
    """``assistd worker``: no HTTP; up once it logged that it executes runs."""

    def ready(self) -> bool:
        return "executing up to" in self.log_since_start()


def assistd_env(
    root: Path, name: str, database_url: str | None, log_level: str = LOG_LEVEL
) -> dict[str, str]:
    data_dir = root / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    env = {
        **base_env(),
        "ASSISTD_DATA_DIR": str(data_dir),
        "ASSISTD_LOG_LEVEL": log_level,
        "ASSISTD_DEFAULT_MODEL": "scripted",
    }
    if database_url:
        env["ASSISTD_DATABASE_URL"] = database_url
    return env


def api_node(root: Path, name: str, database_url: str | None, *, no_worker: bool) -> ServerProcess:
    port = free_port()
    command = [sys.executable, "-m", "assistd", "serve", "--host", HOST, "--port", str(port)]
    if no_worker:
        command.append("--no-worker")
    return ServerProcess(name, command, assistd_env(root, name, database_url), root / f"{name}.log", port)


def worker(root: Path, name: str, database_url: str, concurrency: int | None = None) -> WorkerProcess:
    # At info: its start line says it is up (it also logs a line per run).
    env = assistd_env(root, name, database_url, log_level="info")
    if concurrency is not None:
        env["ASSISTD_WORKER_CONCURRENCY"] = str(concurrency)
    command = [sys.executable, "-m", "assistd", "worker"]
    return WorkerProcess(name, command, env, root / f"{name}.log", 0)


def migrate(root: Path, database: BenchDatabase) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assistd", "migrate"],
        env=assistd_env(root, "migrate", database.url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise BenchError(f"assistd migrate failed:\n{result.stdout}\n{result.stderr}")


def start_all(members: list[ServerProcess]) -> None:
    with ThreadPoolExecutor(len(members)) as pool:
        for future in [pool.submit(member.start) for member in members]:
            future.result()


def stop_all(members: Iterable[ServerProcess]) -> None:
    members = list(members)
    if members:
        with ThreadPoolExecutor(len(members)) as pool:
            list(pool.map(lambda member: member.stop(), members))


@dataclass
class Cluster:
    """API nodes (``--no-worker``) and workers on one database; started afresh for every round."""

    key: str
    root: Path
    database: BenchDatabase
    nodes: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    assistant_id: str = ""

    @classmethod
    def make(cls, key: str, root: Path, admin_url: str, concurrency: int | None = None) -> Cluster:
        """``key``: a key of SETUPS, perhaps after a prefix and a dash."""
        database = create_database(admin_url)
        cluster = cls(key, root, database)
        migrate(root, database)
        n_nodes, n_workers = SETUPS[key.rsplit("-", 1)[-1]]
        # Same names (and so log files and data dirs) in every round; new ports.
        cluster.nodes = [
            api_node(root, f"{key}-node{i + 1}", database.url, no_worker=True) for i in range(n_nodes)
        ]
        cluster.workers = [
            worker(root, f"{key}-worker{i + 1}", database.url, concurrency) for i in range(n_workers)
        ]
        return cluster

    @property
    def members(self) -> list[ServerProcess]:
        return [*self.nodes, *self.workers]

    def start(self) -> None:
        for node in self.nodes:  # a new port each time: the last round's may not be free yet
            node.port = free_port()
            node.command[node.command.index("--port") + 1] = str(node.port)
        start_all(self.members)

    def stop(self) -> None:
        stop_all(self.members)


# -- CPU accounting -----------------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float, float]:
    """(busy in processes, in interrupts, stolen) CPU seconds of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system) / CLOCK_TICKS, (irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


@dataclass(frozen=True)
class Seen:
    name: str  # comm, or for PostgreSQL its process title
    cpu: float
    postgres: bool = False


def all_processes() -> dict[int, Seen]:
    """Every process now: its name and CPU seconds so far."""
    found: dict[int, Seen] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            postgres = name == "postgres"
            if postgres:  # the title says which database a backend serves
                name = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = Seen(name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, postgres)
    return found


def command_of(pid: int, fallback: str) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return fallback
    text = " ".join(
        Path(w.decode(errors="replace")).name if i == 0 else w.decode(errors="replace")
        for i, w in enumerate(words)
        if w
    )
    return (text or fallback)[:70]


GROUPS = [
    "API nodes",
    "workers",
    "PostgreSQL, bench db",
    "PostgreSQL, rest",
    "load generator",
    "other processes",
    "interrupts",
]


class CpuMeter:
    """CPU seconds by group over a window: start(), sample() now and then, stop(). Every process on the
    machine is sampled; one first seen after the start began within the window (all its CPU counts),
    one that exits between two samples loses what it used after the first (it shows as unattributed)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.first: dict[int, float] = {}
        self.last: dict[int, Seen] = {}
        self.peak_backends = 0
        self.marker = f" {cluster.database.name} "

    def start(self) -> None:
        self.started = time.perf_counter()
        self.client_before = time.process_time()
        self.machine_before = machine_cpu()
        self.last = all_processes()
        self.first = {pid: seen.cpu for pid, seen in self.last.items()}

    def sample(self) -> None:
        seen = all_processes()
        self.last.update(seen)
        self.peak_backends = max(self.peak_backends, sum(1 for s in seen.values() if self.marker in s.name))

    def stop(self) -> tuple[dict[str, float], list[tuple[float, str]]]:
        """CPU seconds by group (and "machine", "steal", "unattributed", "wall"), and the other
        processes that used the most, as (CPU seconds, command)."""
        self.sample()
        wall = time.perf_counter() - self.started
        cpu = dict.fromkeys(GROUPS, 0.0)
        cpu["load generator"] = time.process_time() - self.client_before
        groups = {os.getpid(): ""}
        for group, members in (("API nodes", self.cluster.nodes), ("workers", self.cluster.workers)):
            for member in members:
                assert member.process is not None
                groups[member.process.pid] = group
        others: list[tuple[float, int]] = []
        for pid, seen in self.last.items():
            used = seen.cpu - self.first.get(pid, 0.0)
            known = groups.get(pid)
            if known == "":
                continue  # this process: counted above
            if known is not None:
                group = known
            elif seen.postgres:
                group = "PostgreSQL, bench db" if self.marker in seen.name + " " else "PostgreSQL, rest"
            else:
                group = "other processes"
                if used > 0:
                    others.append((used, pid))
            cpu[group] += used
        busy, interrupts, steal = machine_cpu()
        cpu["interrupts"] = interrupts - self.machine_before[1]
        cpu["machine"] = busy - self.machine_before[0] + cpu["interrupts"]
        cpu["steal"] = steal - self.machine_before[2]
        cpu["unattributed"] = cpu["machine"] - sum(cpu[group] for group in GROUPS)
        cpu["wall"] = wall
        top = [(used, command_of(pid, self.last[pid].name)) for used, pid in sorted(others, reverse=True)[:3]]
        return cpu, top


# -- SSE over raw HTTP (the probe and the single runs) ------------------------------------------------


@dataclass
class Arrival:
    seq: int
    event: str
    at: float  # time.time() when the event was read


@dataclass
class StreamedRun:
    run_id: str
    arrivals: list[Arrival]
    turnaround: float  # request sent -> thread.run.completed read, seconds
    keepalives: int = 0  # SSE comments received (the server's keep-alive)


async def stream_one(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> StreamedRun:
    """POST a streamed run and read its SSE to ``done``; raise BenchError unless it completed."""
    run_id = ""
    arrivals: list[Arrival] = []
    completed_after: float | None = None
    event, data, seq = "", "", None
    keepalives = 0
    async with asyncio.timeout(RUN_TIMEOUT_S):
        started = time.perf_counter()
        async with http.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                raise BenchError(f"POST {path} -> {response.status_code}: {response.text[:300]}")
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    keepalives += 1
                    continue
                if line:
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].lstrip()
                    elif line.startswith("id:"):
                        seq = int(line[3:].strip())
                    continue
                if not event:
                    continue  # a comment (keep-alive)
                now = time.time()
                if event == "done":
                    break
                if event == "thread.run.created":
                    run_id = json.loads(data)["id"]
                elif event == "thread.run.completed":
                    completed_after = time.perf_counter() - started
                elif event in STREAM_FAILURES:
                    raise BenchError(f"run {run_id} streamed {event}: {data[:300]}")
                if seq is not None:
                    arrivals.append(Arrival(seq, event, now))
                event, data, seq = "", "", None
    if completed_after is None:
        raise BenchError(f"the stream of run {run_id or '?'} ended without thread.run.completed")
    return StreamedRun(run_id, arrivals, completed_after, keepalives)


def raw_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=httpx.Timeout(RUN_TIMEOUT_S))


@dataclass
class Latencies:
    """Event latencies (seconds) of streamed runs: every event, the worker's only, the completed one."""

    runs: int = 0
    all: list[float] = field(default_factory=list)
    worker: list[float] = field(default_factory=list)
    completed: list[float] = field(default_factory=list)
    unmatched: int = 0

    def add(self, runs: list[StreamedRun], created: dict[tuple[str, int], float]) -> None:
        for run in runs:
            self.runs += 1
            for arrival in run.arrivals:
                written = created.get((run.run_id, arrival.seq))
                if written is None:
                    self.unmatched += 1
                    continue
                latency = arrival.at - written
                self.all.append(latency)
                if arrival.event not in NODE_EVENTS:
                    self.worker.append(latency)
                if arrival.event == "thread.run.completed":
                    self.completed.append(latency)


def p50_p99(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}" if values else "n/a"


# -- (a) throughput -----------------------------------------------------------------------------------


@dataclass
class Failures:
    count: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, detail: str) -> None:
        self.count[kind] += 1
        if len(self.examples) < 8:
            self.examples.append(f"{kind}: {detail[:300]}")

    def total(self) -> int:
        return sum(self.count.values())


@dataclass
class Window:
    """One setup in one mode, summed over its rounds."""

    completed: int = 0
    seconds: float = 0.0
    requests: int = 0  # by the load clients, within windows
    turnarounds: list[float] = field(default_factory=list)
    per_round: list[float] = field(default_factory=list)  # runs/s
    cpu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    peak_backends: int = 0
    transactions: int = 0  # in the bench database, within the windows
    others: defaultdict[str, float] = field(
        default_factory=lambda: defaultdict(float)
    )  # the busiest other processes: CPU seconds
    probe: Latencies = field(default_factory=Latencies)
    probe_turnarounds: list[float] = field(default_factory=list)
    probe_keepalives: int = 0
    slow: list[str] = field(default_factory=list)  # phases of rounds, for the progress lines

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


class Load:
    """The clients of one round: they run until ``stop``; what ends within the window is counted."""

    def __init__(self, cluster: Cluster, mode: str, clients: int, poll_s: float, failures: Failures) -> None:
        self.cluster = cluster
        self.mode = mode
        self.poll_s = poll_s
        self.failures = failures
        self.window: tuple[float, float] = (float("inf"), float("inf"))
        self.stopping = False
        self.completed = 0
        self.requests = 0
        self.turnarounds: list[float] = []
        self.probe_runs: list[StreamedRun] = []
        self.probe_keepalives = 0  # keep-alive comments the probe's streams got (15 s without events)
        self.sdks = [
            [
                openai.AsyncOpenAI(
                    base_url=f"{node.url}/v1", api_key="sk-bench", max_retries=0, timeout=RUN_TIMEOUT_S
                )
                for node in cluster.nodes
            ]
            for _ in range(clients)
        ]
        self.tasks: list[asyncio.Task[None]] = []

    def in_window(self, moment: float) -> bool:
        return self.window[0] <= moment < self.window[1]

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._client(index, sdks)) for index, sdks in enumerate(self.sdks)]
        self.tasks.append(asyncio.create_task(self._probe()))

    async def stop(self) -> None:
        self.stopping = True
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await asyncio.gather(*self.tasks)
        finally:
            for sdks in self.sdks:
                for sdk in sdks:
                    await sdk.close()

    async def _client(self, index: int, sdks: list[openai.AsyncOpenAI]) -> None:
        turn = index  # requests go to the nodes in turn; clients start on different nodes

        def next_sdk() -> openai.AsyncOpenAI:
            nonlocal turn
            turn += 1
            return sdks[turn % len(sdks)]

        while not self.stopping:
            started = time.perf_counter()
            requests = 0
            run_id, last = "", "nothing"  # for the failure's message
            try:
                async with asyncio.timeout(RUN_TIMEOUT_S):
                    if self.mode == "polled":
                        run = await next_sdk().beta.threads.create_and_run(
                            assistant_id=self.cluster.assistant_id, thread=THREAD
                        )
                        requests += 1
                        run_id = run.id
                        while run.status not in TERMINAL:
                            last = run.status
                            await asyncio.sleep(self.poll_s)
                            run = await next_sdk().beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
                            requests += 1
                        if run.status != "completed":
                            self.fail(f"run {run.status}", run_id, str(run.last_error), started)
                            continue
                    else:
                        stream = await next_sdk().beta.threads.create_and_run(
                            assistant_id=self.cluster.assistant_id, thread=THREAD, stream=True
                        )
                        requests += 1
                        completed = False
                        async with stream:
                            async for event in stream:
                                last = event.event
                                if event.event == "thread.run.created":
                                    run_id = event.data.id
                                elif event.event == "thread.run.completed":
                                    completed = True
                                elif event.event in STREAM_FAILURES:
                                    self.fail(event.event, run_id, repr(event.data), started)
                        if not completed:
                            self.fail("stream", run_id, f"ended after {last}", started)
                            continue
            except TimeoutError:
                self.fail("timeout", run_id, f"not done within {RUN_TIMEOUT_S:.0f} s; last {last}", started)
                continue
            except Exception as error:  # whatever the SDK raised, e.g. on an event it cannot parse
                self.fail(type(error).__name__, run_id, f"{error} (after {last})", started)
                await asyncio.sleep(0.1)  # a server that refuses everything is not asked in a tight loop
                continue
            done = time.perf_counter()
            if self.in_window(done):
                self.completed += 1
                self.turnarounds.append(done - started)
            if self.in_window(started) or self.in_window(done):
                self.requests += requests

    def fail(self, kind: str, run_id: str, detail: str, started: float) -> None:
        self.failures.add(
            f"{self.mode}, {SETUP_NAMES[self.cluster.key]}: {kind}",
            f"run {run_id or '?'}, {time.perf_counter() - started:.1f} s after its create: {detail}",
        )

    async def _probe(self) -> None:
        """One streamed run after another on the first node, raw HTTP: events with their ids."""
        body = {"assistant_id": self.cluster.assistant_id, "thread": THREAD, "stream": True}
        async with raw_client(self.cluster.nodes[0].url) as http:
            while not self.stopping:
                started = time.perf_counter()
                try:
                    run = await stream_one(http, "/v1/threads/runs", body)
                except Exception as error:
                    self.fail(f"probe {type(error).__name__}", "", str(error), started)
                    await asyncio.sleep(0.1)
                    continue
                self.probe_keepalives += run.keepalives
                if self.in_window(started) and self.in_window(time.perf_counter()):
                    self.probe_runs.append(run)


async def measure_round(
    cluster: Cluster, mode: str, args: argparse.Namespace, failures: Failures, window: Window
) -> None:
    if not cluster.assistant_id:
        async with openai.AsyncOpenAI(
            base_url=f"{cluster.nodes[0].url}/v1", api_key="sk-bench", max_retries=0
        ) as sdk:
            cluster.assistant_id = (await sdk.beta.assistants.create(model="gpt-4o", name="bench")).id
    load = Load(cluster, mode, args.clients, args.poll_ms / 1000, failures)
    meter = CpuMeter(cluster)
    seconds = args.duration / args.rounds
    load.start()
    try:
        await asyncio.sleep(args.warmup)
        xacts_before = await transactions(cluster.database)
        meter.start()
        start = time.perf_counter()
        load.window = (start, start + seconds)
        while time.perf_counter() < start + seconds:
            await asyncio.sleep(min(SAMPLE_S, max(0.0, start + seconds - time.perf_counter())))
            meter.sample()
        cpu, top = meter.stop()
        window.transactions += await transactions(cluster.database) - xacts_before
    finally:
        drain = time.perf_counter()
        await load.stop()
        window.slow.append(f"drain {time.perf_counter() - drain:.1f} s")
    window.completed += load.completed
    window.seconds += cpu["wall"]
    window.requests += load.requests
    window.turnarounds.extend(load.turnarounds)
    window.per_round.append(load.completed / cpu["wall"])
    for group, used in cpu.items():
        window.cpu[group] += used
    for used, command in top:
        window.others[command] += used
    window.peak_backends = max(window.peak_backends, meter.peak_backends)
    created = await event_times(cluster.database, [run.run_id for run in load.probe_runs])
    window.probe.add(load.probe_runs, created)
    window.probe_turnarounds.extend(run.turnaround for run in load.probe_runs)
    window.probe_keepalives += load.probe_keepalives


def measure_throughput(
    clusters: dict[str, Cluster], args: argparse.Namespace, failures: Failures
) -> dict[str, dict[str, Window]]:
    """Rounds: each setup in turn (which goes first alternating) is started, measured in every mode
    (which goes first alternating too), and stopped."""
    results = {mode: {key: Window() for key in clusters} for mode in args.modes}
    began = time.monotonic()
    for index in range(args.rounds):
        order = list(clusters) if index % 2 == 0 else list(reversed(clusters))
        modes = list(args.modes) if index % 2 == 0 else list(reversed(args.modes))
        for key in order:
            cluster = clusters[key]
            phase = time.monotonic()
            cluster.start()
            started = f"start {time.monotonic() - phase:.1f} s"
            try:
                for mode in modes:
                    window = results[mode][key]
                    asyncio.run(measure_round(cluster, mode, args, failures, window))
                    progress(
                        f"  round {index + 1}/{args.rounds}, {SETUP_NAMES[key]}, {mode}: "
                        f"{window.per_round[-1]:.1f} runs/s ({started}, {window.slow[-1]}; "
                        f"{time.monotonic() - began:.0f} s in all)"
                    )
                for member in cluster.members:
                    assert member.process is not None
                    if member.process.poll() is not None:
                        failures.add("process exited", f"{member.name}: {member.process.returncode}")
            finally:
                cluster.stop()
    return results


# -- (b) single runs ----------------------------------------------------------------------------------


@dataclass
class Single:
    label: str
    url: str
    database: BenchDatabase | None
    turnarounds: list[float] = field(default_factory=list)
    runs: list[StreamedRun] = field(default_factory=list)
    latencies: Latencies = field(default_factory=Latencies)


async def measure_single(targets: list[Single], runs: int) -> None:
    clients = {target.label: raw_client(target.url) for target in targets}
    try:
        threads: dict[str, list[str]] = {}
        assistants: dict[str, str] = {}
        for target in targets:
            http = clients[target.label]
            response = await http.post("/v1/assistants", json={"model": "gpt-4o", "name": "bench"})
            assistants[target.label] = response.raise_for_status().json()["id"]
            ids = []
            for _ in range(runs + SINGLE_WARMUP):
                response = await http.post("/v1/threads", json=THREAD)
                ids.append(response.raise_for_status().json()["id"])
            threads[target.label] = ids

        async def one(target: Single) -> StreamedRun:
            thread_id = threads[target.label].pop()
            body = {"assistant_id": assistants[target.label], "stream": True}
            return await stream_one(clients[target.label], f"/v1/threads/{thread_id}/runs", body)

        for target in targets:
            for _ in range(SINGLE_WARMUP):
                await one(target)
        sizes = [runs // SINGLE_ROUNDS + (1 if i < runs % SINGLE_ROUNDS else 0) for i in range(SINGLE_ROUNDS)]
        for index, size in enumerate(sizes):
            order = targets[index % len(targets) :] + targets[: index % len(targets)]
            for target in order:
                for _ in range(size):
                    run = await one(target)
                    target.turnarounds.append(run.turnaround)
                    target.runs.append(run)
        for target in targets:
            if target.database is not None:
                created = await event_times(target.database, [run.run_id for run in target.runs])
                target.latencies.add(target.runs, created)
    finally:
        for http in clients.values():
            await http.aclose()


# -- reporting ----------------------------------------------------------------------------------------


def throughput_table(results: dict[str, dict[str, Window]]) -> str:
    header = [
        "mode",
        "setup",
        "runs completed",
        "runs/s",
        "ratio",
        "runs/s per round",
        "turnaround p50 / p99 ms",
        "requests/s",
        "CPU ms/run nodes / workers / PostgreSQL",
        "DB transactions per run",
        "PostgreSQL connections (peak)",
    ]
    rows = []
    for mode, windows in results.items():
        base = windows.get("1+1")
        for key, window in windows.items():
            completed = max(window.completed, 1)
            rows.append(
                [
                    mode,
                    SETUP_NAMES[key],
                    f"{window.completed}",
                    f"**{window.rate:.1f}**",
                    f"**{window.rate / base.rate:.2f}x**" if base and base.rate and key != "1+1" else "1.00x",
                    ", ".join(f"{rate:.1f}" for rate in window.per_round),
                    p50_p99(window.turnarounds),
                    f"{window.requests / window.seconds:.0f}" if window.seconds else "n/a",
                    " / ".join(
                        ms(window.cpu[group] / completed)
                        for group in ("API nodes", "workers", "PostgreSQL, bench db")
                    ),
                    f"{window.transactions / completed:.1f}",
                    f"{window.peak_backends}",
                ]
            )
    return markdown_table(header, rows, left=2)


def cpu_table(results: dict[str, dict[str, Window]]) -> str:
    header = ["mode", "setup", *GROUPS, "unattributed", "machine busy (steal)"]
    rows = []
    for mode, windows in results.items():
        for key, window in windows.items():
            wall = window.seconds or 1.0
            rows.append(
                [
                    mode,
                    SETUP_NAMES[key],
                    *(f"{window.cpu[group] / wall:.2f}" for group in [*GROUPS, "unattributed"]),
                    f"**{window.cpu['machine'] / wall:.2f}** ({window.cpu['steal'] / wall:.2f})",
                ]
            )
    return markdown_table(header, rows, left=2)


def busiest_others(results: dict[str, dict[str, Window]]) -> str:
    total: defaultdict[str, float] = defaultdict(float)
    seconds = 0.0
    for windows in results.values():
        for window in windows.values():
            for command, used in window.others.items():
                total[command] += used
            seconds += window.seconds
    busiest = sorted(total.items(), key=lambda item: -item[1])[:4]
    return "; ".join(f"`{command}` {used / seconds:.2f}" for command, used in busiest) or "none"


def latency_rows(label: str, setup: str, latencies: Latencies, keepalives: int | None = None) -> list[str]:
    return [
        label,
        setup,
        f"{latencies.runs}" + (f" ({keepalives} keep-alives)" if keepalives else ""),
        f"{len(latencies.all)}" + (f" ({latencies.unmatched} unmatched)" if latencies.unmatched else ""),
        f"**{p50_p99(latencies.all)}**",
        p50_p99(latencies.worker),
        p50_p99(latencies.completed),
    ]


def latency_table(results: dict[str, dict[str, Window]], singles: list[Single]) -> str:
    header = [
        "load",
        "setup",
        "streamed runs",
        "events",
        "all events p50 / p99 ms",
        "worker's events p50 / p99 ms",
        "thread.run.completed p50 / p99 ms",
    ]
    rows = [
        latency_rows("one run at a time", single.label, single.latencies)
        for single in singles
        if single.database is not None
    ]
    for mode, windows in results.items():
        for key, window in windows.items():
            rows.append(
                latency_rows(
                    f"probe under the {mode} load", SETUP_NAMES[key], window.probe, window.probe_keepalives
                )
            )
    return markdown_table(header, rows, left=2)


def single_table(singles: list[Single]) -> str:
    header = ["target", "runs", "mean / p50 / p99 ms", "ratio p50 to SQLite", "more than SQLite, p50 ms"]
    base = percentile(singles[0].turnarounds, 50) if singles and singles[0].turnarounds else None
    rows = []
    for single in singles:
        values = single.turnarounds
        p50 = percentile(values, 50)
        rows.append(
            [
                single.label,
                f"{len(values)}",
                f"{ms(mean(values))} / {ms(p50)} / {ms(percentile(values, 99))}",
                f"**{p50 / base:.2f}x**" if base else "n/a",
                ms(p50 - base) if base else "n/a",
            ]
        )
    return markdown_table(header, rows)


def check_logs(members: list[ServerProcess]) -> tuple[list[str], list[str]]:
    """Log lines that may say something went wrong (beyond a start's or a stop's own lines, and the
    workers' info lines): every such line, and a summary of the logged messages (ERROR, WARNING,
    CRITICAL), counted by process and by the message's first line, with the exception ending it."""
    problems: list[str] = []
    counts: Counter[tuple[str, str]] = Counter()
    for member in members:
        message = ""
        for line in [*member.log().splitlines(), ""]:
            if message and not line.startswith((" ", "Traceback", "During handling", "The above")):
                # The last line of a traceback names the exception.
                if line and ":" in line.split(" ", 1)[0] and not line[:4].isdigit():
                    message += " -> " + line.split(" (Background on this error", 1)[0][:200]
                    line = ""
                counts[(member.name.rstrip("0123456789"), re.sub(r"\b(run|req)_\w+", r"\1_…", message))] += 1
                message = ""
            if not line or any(benign in line for benign in BENIGN_LOG):
                continue
            if line.startswith("INFO:") or " INFO " in line:
                continue  # uvicorn's start and stop lines; the workers' info lines
            problems.append(f"{member.name}: {line}")
            for level in (" ERROR ", " WARNING ", " CRITICAL "):
                if level in line:
                    message = level.strip() + " " + line.split(level, 1)[1][:160]
    summary = [f"{count} x {who}: {message}" for (who, message), count in sorted(counts.items())]
    return problems, summary


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres", default=PG_ADMIN_URL, help=f"PostgreSQL admin URL ({PG_ADMIN_URL})")
    parser.add_argument("--clients", type=int, default=32, help="(a) concurrent load clients (32)")
    parser.add_argument("--duration", type=float, default=15.0, help="(a) measured seconds per setup (15)")
    parser.add_argument("--rounds", type=int, default=3, help="(a) rounds the duration is split in (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="(a) unmeasured seconds per round (2)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="(a) polled: sleep between GETs (20)")
    parser.add_argument("--modes", default="polled,streamed", help="(a) polled, streamed or both")
    parser.add_argument("--single-runs", type=int, default=100, help="(b) runs per target; 0 skips (b)")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="ASSISTD_WORKER_CONCURRENCY of the workers (default: assistd's default, 64)",
    )
    parser.add_argument("--keep-logs", type=Path, help="write the processes' logs here and keep them")
    args = parser.parse_args(argv)
    args.modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if any(mode not in ("polled", "streamed") for mode in args.modes):
        parser.error("--modes takes polled, streamed or both")
    if args.clients < 1 or args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.single_runs < 0:
        parser.error("--clients and --rounds must be at least 1, --duration positive")
    if 0 < args.single_runs < SINGLE_ROUNDS:
        parser.error(f"--single-runs must be 0 or at least {SINGLE_ROUNDS}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Every client.beta call of the SDK warns that the Assistants API is deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    began = time.monotonic()
    failures = Failures()
    leftovers: list[str] = []
    databases: list[BenchDatabase] = []
    members: list[ServerProcess] = []
    results: dict[str, dict[str, Window]] = {}
    singles: list[Single] = []
    log_summary: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            root = args.keep_logs
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-bench-scale-")))
        clusters: dict[str, Cluster] = {}
        try:
            if args.modes:
                for key in SETUPS:
                    clusters[key] = Cluster.make(key, root, args.postgres, args.worker_concurrency)
                    databases.append(clusters[key].database)
                    members += clusters[key].members
                progress(f"(a) throughput, {args.clients} clients, modes {', '.join(args.modes)}")
                results = measure_throughput(clusters, args, failures)
                for cluster in clusters.values():
                    statuses = asyncio.run(run_statuses(cluster.database))
                    if set(statuses) - {"completed"}:
                        leftovers.append(f"{SETUP_NAMES[cluster.key]}: runs by status {dict(statuses)}")
            if args.single_runs:
                progress(f"(b) single runs, {args.single_runs} per target")
                sqlite = api_node(root, "single-sqlite", None, no_worker=False)
                pg_database = create_database(args.postgres)
                databases.append(pg_database)
                pg_single = api_node(root, "single-postgres", pg_database.url, no_worker=False)
                cluster = Cluster.make("single-2+2", root, args.postgres, args.worker_concurrency)
                databases.append(cluster.database)
                members += [sqlite, pg_single, *cluster.members]
                sqlite.start()
                pg_single.start()  # migrates its database
                cluster.start()
                try:
                    singles = [
                        Single("SQLite, one process (`assistd serve`)", sqlite.url, None),
                        Single("PostgreSQL, one process (`assistd serve`)", pg_single.url, pg_database),
                        Single(
                            "PostgreSQL, 2 nodes + 2 workers, streamed from node 1",
                            cluster.nodes[0].url,
                            cluster.database,
                        ),
                    ]
                    asyncio.run(measure_single(singles, args.single_runs))
                finally:
                    stop_all([sqlite, pg_single, *cluster.members])
                for database in (pg_database, cluster.database):
                    statuses = asyncio.run(run_statuses(database))
                    if set(statuses) - {"completed"}:
                        leftovers.append(f"{database.name}: runs by status {dict(statuses)}")
        finally:
            stop_all(members)
            for database in databases:
                try:
                    drop_database(database)
                except Exception as error:  # reported; the others are dropped all the same
                    progress(f"dropping {database.name} failed: {error!r}")
            problems, log_summary = check_logs(members)
            if problems:
                progress(f"--- {len(problems)} log lines of note (of {len(members)} processes' logs):")
                progress("\n".join(problems[:60]))
                progress("---")

    report(args, results, singles, log_summary, time.monotonic() - began)
    if failures.total() or leftovers:
        progress(f"FAILED: {failures.total()} failed runs {dict(failures.count)}")
        progress("\n".join(failures.examples + leftovers))
        sys.exit(1)


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, Window]],
    singles: list[Single],
    log_summary: list[str],
    took: float,
) -> None:
    print("### Scale-out\n")
    print(f"Command: `{command_line()}`\n")
    print(f"{versions()}, openai {openai.__version__}; scripted model; PostgreSQL at {args.postgres}\n")
    if results:
        print(
            f"(a) Throughput: {args.clients} clients (AsyncOpenAI), create_and_run then polled every "
            f"{args.poll_ms:g} ms or streamed; worker concurrency "
            f"{args.worker_concurrency or '64 (default)'}; {args.rounds} alternating rounds of "
            f"{args.warmup:g} s warm-up "
            f"and {args.duration / args.rounds:g} s measured per setup ({args.duration:g} s in all)\n"
        )
        print(throughput_table(results))
        print(
            "\nratio = runs/s of 2 nodes + 2 workers / runs/s of 1 node + 1 worker. CPU ms/run: the "
            "group's CPU time in the windows per run completed (the probe's runs not counted, nor in DB "
            "transactions per run, from pg_stat_database).\n"
        )
        print(
            "CPU used in the windows, in cores (CPU seconds / wall seconds; the machine has "
            f"{os.cpu_count()}):\n"
        )
        print(cpu_table(results))
        print(
            "\nPostgreSQL, rest = its background processes and other databases' backends; interrupts = the "
            "machine's irq and softirq time (loopback TCP, much of it); unattributed = the machine's busy "
            "time (/proc/stat) minus the columns before it (processes that exited between two samples).\n"
        )
        print(
            f"The other processes that used the most, in cores over all windows: {busiest_others(results)}\n"
        )
    if singles:
        print(
            f"(b) Single runs, one at a time: request sent -> thread.run.completed read "
            f"({args.single_runs} per target, {SINGLE_ROUNDS} rounds, {SINGLE_WARMUP} warm-up)\n"
        )
        print(single_table(singles))
        print()
    if results or singles:
        print("Event latency: arrival at the client - run_events.created_at\n")
        print(latency_table(results, singles))
        print(
            "\nworker's events = all but thread.created, thread.run.created and thread.run.queued, which "
            "the API node writes when it creates the run.\n"
        )
    if log_summary:
        print("Logged errors and warnings (times, by setup and process kind):\n")
        print("\n".join(f"- {line}" for line in log_summary) + "\n")
    else:
        print("The processes logged no errors or warnings.\n")
    print(f"Took {took:.0f} s.")


if __name__ == "__main__":
    main()

"""code_interpreter: a kernel's cold start, warm calls, heavy imports and memory, in the sandbox and in runs.

Run: ``.venv/bin/python bench/code_interpreter.py [--cold 20] [--warm 30] [--heavy 5] [--kernels 1,4,8]``

Needs bubblewrap (``bwrap``), as the server does for code_interpreter. Everything is measured at two
levels, side by side in one run:

* the sandbox: ``assistd.sandbox.CodeSandbox.execute`` called in this process, on a sandbox of its own
  with the server's default settings but for the kernel limit (its kernels are this process's
  children);
* runs on a live assistd (SQLite in a fresh temporary data dir, scripted model), driven with the
  official openai SDK: a thread whose last message is ``/code`` and a fenced block makes the scripted
  model call code_interpreter with that block, then reply with the last line printed
  (docs/scripted-model.md). Every run is created with ``stream=True`` and timed from the create call
  to the end of its event stream.

The floor of a run is the same run without code: the same assistant (it has the code_interpreter
tool), a plain text message, which the scripted model answers "You said: ..." in one turn.

(a) Cold start: a new session's first call, ``print(1)``: kernel start and the call. Sandbox: a new
session key, ended after its sample (untimed). The sandbox is measured on the event loop the server
runs on (uvloop, which uvicorn takes when it is installed) and, beside it, on asyncio's own loop (a
second sandbox, on a thread of its own): how a kernel's process is spawned depends on the loop. Runs: a
new thread (created untimed, deleted after its sample, which ends its kernel). Floor: a new thread with
the plain message. ``--cold`` rounds, each taking one sample of each in turn, which goes first
rotating. Before that, once each and untimed: the server's first run (plain text: it checks that the
sandbox works, by starting and stopping a kernel, before a run with the tool), its first code run, and
the in-process sandbox's first call; then every measure is warmed up. The server of (a)-(c) may keep
as many kernels as they could start (``ASSISTD_CODE_MAX_KERNELS``), so that no call stops another
kernel first; (d) measures a cold start at the default limit, where one does.

(b) Warm call: ``print(1)`` on a session, thread and floor thread that have run it before (three
untimed warm-ups each), ``--warm`` rounds as in (a); each run's message is created untimed.

(c) First heavy import: ``import pandas, matplotlib.pyplot`` in a fresh kernel (started by an untimed
``print(1)``), then a plot shown with ``plt.show()`` (one PNG; a run also stores it as a file), then a
second plot; ``--heavy`` rounds, sandbox and runs alternating, each session ended (its thread deleted)
after. A breakdown of the import, timed inside further fresh sandbox kernels: each module, and
matplotlib's font list, which it builds when ``MPLCONFIGDIR`` has no cache (the kernel's ``/tmp``,
fresh per kernel), against reading it back.

(d) Memory per live kernel on a fresh server whose kernel limit is the largest count (8, the default,
by default): threads run ``print(1)``
until 1, 4, 8 (``--kernels``) kernels are alive, and on another fresh server
``import pandas, matplotlib.pyplot`` likewise. A kernel is the process tree under one ``bwrap`` child
of the server process (bwrap, bwrap as the sandbox's pid 1, the ipykernel), found in ``/proc``; its
memory is the sum of ``/proc/<pid>/smaps_rollup`` over the tree: RSS, PSS (shared pages divided among
the processes that map them) and USS (private pages: what the kernel alone holds). Then, on the first of
those servers, cold starts at the limit (each first stops the least recently used kernel), against
cold starts one kernel below it (the least recently used thread deleted first, untimed) and the floor.

Times: mean / p50 / p95 ms ((c): mean / p50 / min / max). "assistd CPU" is the CPU time of the Python
that drives the kernel, and in brackets the part of it spent in the system: this process for the
sandbox, the server process for runs (``/proc/<pid>/stat``, in 10 ms ticks: read it over many calls);
"kernel CPU" is that of the kernel's process tree over the same calls.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai
from common import (
    CLOCK_TICKS,
    ServerProcess,
    assistd_server,
    command_line,
    mean,
    ms,
    percentile,
    report_log,
    running,
    versions,
)
from openai.types.beta import CodeInterpreterToolParam
from openai.types.beta.assistant_stream_event import (
    ThreadMessageCompleted,
    ThreadRunCompleted,
    ThreadRunStepCompleted,
)
from openai.types.beta.threads.runs import CodeInterpreterToolCall

from assistd.config import Settings
from assistd.sandbox import CodeSandbox

TOOLS: list[CodeInterpreterToolParam] = [{"type": "code_interpreter"}]
TRIVIAL = "print(1)"
HEAVY = "import pandas, matplotlib.pyplot"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [2, 4, 3])\nplt.show()"
PLAIN = "Hello, how are you today?"
WARMUP = 3
ENDED_OTHERWISE = frozenset(
    {
        "thread.run.failed",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.cancelled",
        "thread.run.requires_action",
    }
)
AT_LIMIT_ROUNDS = 10
RUN_TIMEOUT_S = 120.0
MIB = 1024 * 1024
# Timed inside fresh kernels: each import, then the font list built anew (what the first import of
# matplotlib.font_manager did, as the kernel's MPLCONFIGDIR held no cache) and read from the cache it
# wrote. _load_fontmanager is matplotlib's own (private) loader; "nan" where a version lacks it.
BREAKDOWN_PARTS = ("numpy", "pandas", "matplotlib", "matplotlib.font_manager", "matplotlib.pyplot")
BREAKDOWN = f"""
import time as _t
_marks = []
for _name in {BREAKDOWN_PARTS!r}:
    _s = _t.perf_counter()
    __import__(_name)
    _marks.append(_t.perf_counter() - _s)
import matplotlib.font_manager as _fm
_load = getattr(_fm, "_load_fontmanager", None)
for _cached in (False, True):
    _s = _t.perf_counter()
    if _load is not None:
        _load(try_read_cache=_cached)
    _marks.append(_t.perf_counter() - _s if _load is not None else float("nan"))
print(" ".join(repr(_m) for _m in _marks))
"""
BREAKDOWN_LABELS = (
    "import numpy",
    "import pandas (numpy already in)",
    "import matplotlib",
    "import matplotlib.font_manager (builds the font list: no cache in the fresh /tmp)",
    "import matplotlib.pyplot (the rest)",
    "font list built again, for comparison",
    "font list read from the cache just written, for comparison",
)


class BenchError(RuntimeError):
    pass


def code_message(code: str) -> str:
    return f"/code\n```python\n{code}\n```"


# -- /proc ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    cpu: float  # user + system seconds
    system: float  # of which system (the OS working for it)


def proc_stat(pid: int) -> ProcStat | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, tail = stat.rsplit(")", 1)
    fields = tail.split()
    user, system = int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS
    return ProcStat(pid, int(fields[1]), head.split("(", 1)[1], user + system, system)


def processes() -> dict[int, ProcStat]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            found[stat.pid] = stat
    return found


def kernel_trees(parent: int) -> dict[int, list[int]]:
    """The kernels started by process ``parent``: each ``bwrap`` child's pid, with its whole tree."""
    table = processes()
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    trees = {}
    for pid in children.get(parent, []):
        if table[pid].comm != "bwrap":
            continue
        tree, todo = [], [pid]
        while todo:
            current = todo.pop()
            tree.append(current)
            todo += children.get(current, [])
        trees[pid] = sorted(tree)
    return trees


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for {pid}")


def tree_cpu(tree: list[int]) -> float:
    return sum(stat.cpu for pid in tree if (stat := proc_stat(pid)) is not None)


@dataclass
class Memory:
    rss: int = 0  # bytes
    pss: int = 0
    uss: int = 0

    def add(self, other: Memory) -> None:
        self.rss += other.rss
        self.pss += other.pss
        self.uss += other.uss


def smaps(pid: int) -> Memory:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            values[name] = int(parts[0]) * 1024
    return Memory(values["Rss"], values["Pss"], values["Private_Clean"] + values["Private_Dirty"])


def tree_memory(tree: list[int], table: dict[int, ProcStat]) -> tuple[Memory, Memory]:
    """The tree's memory in all, and that of its bwrap processes alone."""
    total, bwrap = Memory(), Memory()
    for pid in tree:
        memory = smaps(pid)
        total.add(memory)
        if table[pid].comm == "bwrap":
            bwrap.add(memory)
    return total, bwrap


class Kernels:
    """The kernels process ``parent`` started, each known by the session (or thread) it runs for."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.roots: dict[str, int] = {}  # session -> its kernel's bwrap pid

    def before(self, key: str) -> tuple[set[int], float]:
        """Before a call for ``key``: the kernels alive, and the CPU so far of ``key``'s."""
        trees = kernel_trees(self.parent)
        root = self.roots.get(key)
        return set(trees), tree_cpu(trees[root]) if root in trees else 0.0

    def after(self, key: str, before: tuple[set[int], float]) -> float:
        """After the call: the CPU seconds ``key``'s kernel spent in it (all of it, for a new kernel)."""
        alive, cpu = before
        trees = kernel_trees(self.parent)
        root = self.roots.get(key)
        if root in trees:
            return tree_cpu(trees[root]) - cpu
        new = [pid for pid in trees if pid not in alive]
        if len(new) != 1:
            raise BenchError(f"a call for {key} started {len(new)} kernels, not one")
        self.roots[key] = new[0]
        return tree_cpu(trees[new[0]])


# -- measures ------------------------------------------------------------------------------------------


@dataclass
class Series:
    """Calls of one kind: their times, and the CPU of assistd's side and of the kernel, in seconds."""

    times: list[float] = field(default_factory=list)
    cpu: float = 0.0
    system: float = 0.0  # of cpu
    kernel_cpu: float | None = None

    def add(self, seconds: float, cpu: tuple[float, float], kernel_cpu: float | None = None) -> None:
        self.times.append(seconds)
        self.cpu += cpu[0]
        self.system += cpu[1]
        if kernel_cpu is not None:
            self.kernel_cpu = (self.kernel_cpu or 0.0) + kernel_cpu

    def p(self, q: float) -> float:
        return percentile(self.times, q)

    def cell(self) -> str:
        return f"{ms(mean(self.times))} / {ms(self.p(50))} / {ms(self.p(95))}"

    def spread(self) -> str:
        return f"{ms(mean(self.times))} / {ms(self.p(50))} / {ms(min(self.times))} / {ms(max(self.times))}"

    def cpu_cell(self) -> str:
        kernel = "n/a" if self.kernel_cpu is None else ms(self.kernel_cpu / len(self.times))
        calls = len(self.times)
        return f"{ms(self.cpu / calls)} ({ms(self.system / calls)}) | {kernel}"


@dataclass
class Results:
    rss: tuple[int, int] = (0, 0)  # bytes: the server's and this process's, after (c)
    first_floor: float = 0.0  # the server's first run (it probes the sandbox)
    first_run: float = 0.0  # the server's first code run
    first_sandbox: float = 0.0  # the in-process sandbox's first call (with its set-up)
    cold: dict[str, Series] = field(default_factory=dict)
    warm: dict[str, Series] = field(default_factory=dict)
    heavy: dict[str, Series] = field(default_factory=dict)
    breakdown: list[list[float]] = field(default_factory=list)
    memory: list[tuple[str, int, list[Memory], Memory]] = field(default_factory=list)
    at_limit: dict[str, Series] = field(default_factory=dict)


@dataclass
class RunOutcome:
    seconds: float
    reply: str
    calls: list[CodeInterpreterToolCall]


class Runs:
    """Runs on one live server through the SDK, timed, with the server's CPU and its kernels' trees."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.sdk = openai.AsyncOpenAI(
            base_url=f"{server.url}/v1", api_key="sk-bench", max_retries=0, timeout=RUN_TIMEOUT_S
        )
        self.assistant_id = ""
        self.kernels = Kernels(server.process.pid if server.process else 0)

    async def setup(self) -> None:
        assistant = await self.sdk.beta.assistants.create(model="gpt-4o", tools=TOOLS)
        self.assistant_id = assistant.id

    async def thread(self, text: str) -> str:
        thread = await self.sdk.beta.threads.create(messages=[{"role": "user", "content": text}])
        return thread.id

    async def delete(self, thread_id: str) -> None:
        """Delete the thread, which ends its kernel."""
        await self.sdk.beta.threads.delete(thread_id)

    async def message(self, thread_id: str, text: str) -> None:
        await self.sdk.beta.threads.messages.create(thread_id, role="user", content=text)

    async def run(self, thread_id: str) -> RunOutcome:
        completed = False
        reply = ""
        calls: list[CodeInterpreterToolCall] = []
        async with asyncio.timeout(RUN_TIMEOUT_S):
            started = time.perf_counter()
            stream = await self.sdk.beta.threads.runs.create(
                thread_id, assistant_id=self.assistant_id, stream=True
            )
            async with stream:
                async for event in stream:
                    if isinstance(event, ThreadRunCompleted):
                        completed = True
                    elif isinstance(event, ThreadMessageCompleted):
                        reply = "".join(part.text.value for part in event.data.content if part.type == "text")
                    elif isinstance(event, ThreadRunStepCompleted):
                        details = event.data.step_details
                        if details.type == "tool_calls":
                            calls += [c for c in details.tool_calls if isinstance(c, CodeInterpreterToolCall)]
                    elif event.event in ENDED_OTHERWISE:
                        raise BenchError(f"a run ended {event.event}: {event.data}")
            seconds = time.perf_counter() - started
        if not completed:
            raise BenchError(f"the stream of a run on {thread_id} ended without thread.run.completed")
        return RunOutcome(seconds, reply, calls)

    async def timed(self, series: Series, thread_id: str, code: str | None) -> RunOutcome:
        """One run on ``thread_id`` (its message already there) into ``series``; ``code``: what the run
        must have run (None for the floor)."""
        kernel = self.kernels.before(thread_id)
        cpu = self.cpu()
        outcome = await self.run(thread_id)
        cpu = self.cpu(cpu)
        check_run(outcome, code)
        series.add(outcome.seconds, cpu, None if code is None else self.kernels.after(thread_id, kernel))
        return outcome

    def cpu(self, since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
        """The server process's CPU seconds (all, and system), less ``since``."""
        stat = proc_stat(self.kernels.parent)
        if stat is None:
            raise BenchError("the server is gone")
        return stat.cpu - since[0], stat.system - since[1]

    async def aclose(self) -> None:
        await self.sdk.close()


def check_run(outcome: RunOutcome, code: str | None) -> None:
    if code is None:
        if outcome.calls or not outcome.reply.startswith("You said:"):
            raise BenchError(f"the floor run answered {outcome.reply!r} with {len(outcome.calls)} calls")
        return
    if [call.code_interpreter.input for call in outcome.calls] != [code]:
        raise BenchError(f"a run ran {[c.code_interpreter.input for c in outcome.calls]!r}, not {code!r}")
    outputs = outcome.calls[0].code_interpreter.outputs
    logs = "".join(output.logs for output in outputs if output.type == "logs")
    images = sum(1 for output in outputs if output.type == "image")
    if (logs, images) != expected(code):
        raise BenchError(f"{code!r} gave logs {logs!r} and {images} images")


def expected(code: str) -> tuple[str, int]:
    """The logs and the number of images each measured code gives."""
    return {TRIVIAL: ("1\n", 0), PLOT: ("", 1), HEAVY: ("", 0)}[code]


T = TypeVar("T")


def event_loop() -> str:
    """The event loop the server runs on: uvicorn's "auto" takes uvloop when it is installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``main`` on the event loop the server runs on."""
    if event_loop() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


class LoopThread:
    """asyncio's own event loop in a thread of its own, to call a second sandbox from the main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asyncio-loop", daemon=True)
        self.thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Sandbox:
    """An in-process sandbox, timed, with this process's CPU and the kernels' trees. With ``loop``, the
    sandbox lives on that loop's thread."""

    def __init__(self, sandbox: CodeSandbox, loop: LoopThread | None = None) -> None:
        self.sandbox = sandbox
        self.loop = loop
        self.serial = 0
        self.kernels = Kernels(os.getpid())

    async def on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await coroutine if self.loop is None else await self.loop.run(coroutine)

    async def end(self, session: str) -> None:
        await self.on_loop(self.sandbox.end_session(session))

    def session(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    async def call(self, session: str, code: str) -> tuple[float, str, int]:
        started = time.perf_counter()
        execution = await self.on_loop(self.sandbox.execute(session, code))
        seconds = time.perf_counter() - started
        if execution.failed:
            raise BenchError(f"{code!r} failed in the sandbox:\n{execution.logs}")
        return seconds, execution.logs, len(execution.images)

    async def timed(self, series: Series, session: str, code: str) -> None:
        kernel = self.kernels.before(session)
        cpu, system = time.process_time(), os.times().system
        seconds, logs, images = await self.call(session, code)
        cpu, system = time.process_time() - cpu, os.times().system - system
        if (logs, images) != expected(code):
            raise BenchError(f"{code!r} gave logs {logs!r} and {images} images in the sandbox")
        series.add(seconds, (cpu, system), self.kernels.after(session, kernel))


def rotated(items: list[str], index: int) -> list[str]:
    shift = index % len(items)
    return items[shift:] + items[:shift]


# -- (a)-(c) -------------------------------------------------------------------------------------------

SANDBOX = f"sandbox: CodeSandbox.execute, on {event_loop()} as the server"
SANDBOX_ASYNCIO = "sandbox: CodeSandbox.execute, on asyncio's own loop"
RUN = "run with /code (streamed)"
FLOOR = "floor: run with plain text (streamed)"
AT_LIMIT = "run with /code, new thread, at the limit"
BELOW_LIMIT = "run with /code, new thread, one kernel below the limit"


async def measure_calls(
    runs: Runs, sandbox: Sandbox, plain: Sandbox, args: argparse.Namespace, results: Results
) -> None:
    """(a)-(c); ``plain``: a second sandbox, on asyncio's own loop, for the cold start."""
    scratch = Series()
    # One-offs first: the server's first run (plain text; the assistant has the code_interpreter tool,
    # so the run checks once that the sandbox works, by starting a kernel), its first code run, and
    # the first call of the in-process sandbox (which sets itself up).
    results.first_floor = (await runs.timed(scratch, await runs.thread(PLAIN), None)).seconds
    results.first_run = (await runs.timed(scratch, await runs.thread(code_message(TRIVIAL)), TRIVIAL)).seconds
    one = Series()
    await sandbox.timed(one, sandbox.session("first"), TRIVIAL)
    results.first_sandbox = one.times[0]
    await plain.timed(scratch, plain.session("first"), TRIVIAL)

    # (a) cold start
    cold = results.cold = {SANDBOX: Series(), SANDBOX_ASYNCIO: Series(), RUN: Series(), FLOOR: Series()}
    for index in range(-WARMUP, args.cold):
        for name in rotated(list(cold), index):
            series = cold[name] if index >= 0 else scratch
            if name in (SANDBOX, SANDBOX_ASYNCIO):
                which = sandbox if name == SANDBOX else plain
                session = which.session("cold")
                await which.timed(series, session, TRIVIAL)
                await which.end(session)
            elif name == RUN:
                thread_id = await runs.thread(code_message(TRIVIAL))
                await runs.timed(series, thread_id, TRIVIAL)
                await runs.delete(thread_id)
            else:
                await runs.timed(series, await runs.thread(PLAIN), None)
    progress("measured cold starts")

    # (b) warm calls
    warm = results.warm = {SANDBOX: Series(), RUN: Series(), FLOOR: Series()}
    session = sandbox.session("warm")
    code_thread = await runs.thread(code_message(TRIVIAL))
    floor_thread = await runs.thread(PLAIN)
    first = True
    for index in range(-WARMUP - 1, args.warm):
        for name in rotated(list(warm), index):
            series = warm[name] if index >= 0 else scratch
            if name == SANDBOX:
                await sandbox.timed(series, session, TRIVIAL)
            elif name == RUN:
                if not first:
                    await runs.message(code_thread, code_message(TRIVIAL))
                await runs.timed(series, code_thread, TRIVIAL)
            else:
                if not first:
                    await runs.message(floor_thread, PLAIN)
                await runs.timed(series, floor_thread, None)
        first = False
    progress("measured warm calls")

    # (c) heavy imports
    heavy = results.heavy = {
        f"{level}: {what}": Series()
        for level in ("sandbox", "run")
        for what in ("import pandas, matplotlib.pyplot", "first plot", "second plot")
    }
    for index in range(args.heavy):
        for level in ("sandbox", "run") if index % 2 == 0 else ("run", "sandbox"):
            names = [name for name in heavy if name.startswith(level)]
            if level == "sandbox":
                session = sandbox.session("heavy")
                await sandbox.timed(scratch, session, TRIVIAL)
                for name, code in zip(names, (HEAVY, PLOT, PLOT), strict=True):
                    await sandbox.timed(heavy[name], session, code)
                await sandbox.end(session)
            else:
                thread_id = await runs.thread(code_message(TRIVIAL))
                await runs.timed(scratch, thread_id, TRIVIAL)
                for name, code in zip(names, (HEAVY, PLOT, PLOT), strict=True):
                    await runs.message(thread_id, code_message(code))
                    await runs.timed(heavy[name], thread_id, code)
                await runs.delete(thread_id)
        session = sandbox.session("breakdown")
        await sandbox.call(session, TRIVIAL)
        logs = (await sandbox.call(session, BREAKDOWN))[1]
        await sandbox.end(session)
        results.breakdown.append([float(value) for value in logs.split()])
    progress("measured heavy imports")
    results.rss = (rss(runs.kernels.parent), rss(os.getpid()))


# -- (d) -----------------------------------------------------------------------------------------------


async def measure_memory(runs: Runs, counts: list[int], code: str, state: str, results: Results) -> list[str]:
    """Memory at each count of live kernels; returns their threads, least recently used first."""
    # The server's first run probes the sandbox with a kernel it stops again: not one of those measured.
    await runs.timed(Series(), await runs.thread(PLAIN), None)
    pid = runs.server.process.pid if runs.server.process else 0
    threads: list[str] = []
    for count in counts:
        while len(threads) < count:
            threads.append(await runs.thread(code_message(code)))
            await runs.timed(Series(), threads[-1], code)
        trees = kernel_trees(pid)
        if len(trees) != count:
            raise BenchError(f"{len(trees)} kernels are alive, not {count}")
        table = processes()
        measured = [tree_memory(tree, table) for tree in trees.values()]
        bwrap = Memory()
        for _, part in measured:
            bwrap.add(part)
        results.memory.append((state, count, [total for total, _ in measured], bwrap))
        progress(f"measured memory of {count} kernels, {state}")
    return threads


async def measure_at_limit(runs: Runs, limit: int, threads: list[str], results: Results) -> None:
    """Cold starts on a server whose ``limit`` kernels (of ``threads``, least recently used first) are
    all alive, each first stopping the least recently used one; against cold starts with one kernel
    fewer alive (the least recently used thread deleted first, untimed), and the floor."""
    pid = runs.server.process.pid if runs.server.process else 0
    at_limit = results.at_limit = {AT_LIMIT: Series(), BELOW_LIMIT: Series(), FLOOR: Series()}
    scratch = Series()
    for index in range(-1, AT_LIMIT_ROUNDS):
        for name in rotated(list(at_limit), index):
            series = at_limit[name] if index >= 0 else scratch
            if name == FLOOR:
                await runs.timed(series, await runs.thread(PLAIN), None)
                continue
            oldest = threads.pop(0)
            if name == BELOW_LIMIT:
                await runs.delete(oldest)
            threads.append(await runs.thread(code_message(TRIVIAL)))
            await runs.timed(series, threads[-1], TRIVIAL)
            if name == AT_LIMIT:
                await runs.delete(oldest)  # its kernel was stopped for this one
            if len(kernel_trees(pid)) != limit:
                raise BenchError(f"not {limit} kernels alive after a cold start at the limit")


# -- report --------------------------------------------------------------------------------------------


def calls_table(rows: dict[str, Series], floor: Series) -> str:
    lines = [
        "| call | n | mean / p50 / p95 ms | ratio p50 to the floor run | assistd CPU ms/call (system) "
        "| kernel CPU ms/call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, series in rows.items():
        ratio = series.p(50) / floor.p(50)
        lines.append(
            f"| {name} | {len(series.times)} | {series.cell()} | **{ratio:.1f}x** | {series.cpu_cell()} |"
        )
    return "\n".join(lines)


def shares(rows: dict[str, Series]) -> str:
    sandbox, run, floor = rows[SANDBOX], rows[RUN], rows[FLOOR]

    def per(series: Series, value: float) -> float:
        return value / len(series.times)

    def own(a: float, b: float, c: float) -> str:
        return ms(a - b - c)

    return (
        f"Code adds {ms(mean(run.times) - mean(floor.times))} ms (mean) to a run; the run's own share "
        f"around the code call (run with code - sandbox - floor run) is "
        f"**{own(mean(run.times), mean(sandbox.times), mean(floor.times))} ms** mean, "
        f"{own(run.p(50), sandbox.p(50), floor.p(50))} ms p50, and in CPU "
        f"{own(per(run, run.cpu), per(sandbox, sandbox.cpu), per(floor, floor.cpu))} ms a call."
    )


def heavy_table(results: Results) -> str:
    lines = [
        "| call | n | mean / p50 / min / max ms | assistd CPU ms/call (system) | kernel CPU ms/call |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, series in results.heavy.items():
        lines.append(f"| {name} | {len(series.times)} | {series.spread()} | {series.cpu_cell()} |")
    return "\n".join(lines)


def breakdown_table(results: Results) -> str:
    lines = ["| inside a fresh kernel | mean ms | min / max ms |", "|---|---:|---:|"]
    for index, label in enumerate(BREAKDOWN_LABELS):
        values = [row[index] for row in results.breakdown]
        lines.append(f"| {label} | {ms(mean(values))} | {ms(min(values))} / {ms(max(values))} |")
    return "\n".join(lines)


def memory_table(results: Results) -> str:
    lines = [
        "| state | live kernels | RSS per kernel MiB | PSS per kernel MiB | USS per kernel MiB "
        "| PSS of all kernels MiB | of which bwrap, PSS per kernel MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for state, count, kernels, bwrap in results.memory:

        def per(values: list[int]) -> str:
            return f"{sum(values) / len(values) / MIB:.1f}"

        lines.append(
            f"| {state} | {count} | {per([k.rss for k in kernels])} | **{per([k.pss for k in kernels])}** "
            f"| {per([k.uss for k in kernels])} | {sum(k.pss for k in kernels) / MIB:.1f} "
            f"| {bwrap.pss / count / MIB:.2f} |"
        )
    return "\n".join(lines)


def environment() -> str:
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("openai", "ipykernel", "pandas", "matplotlib")
    )
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    user = "root" if os.geteuid() == 0 else "a user"
    return f"{versions()}, {packages}, {bwrap}, Linux {platform.release()}, running as {user}"


def report(results: Results, args: argparse.Namespace, limit: int, took: float) -> None:
    print("### Code interpreter\n")
    print(f"Command: `{command_line()}`\n")
    print(f"{environment()}\n")
    print(
        f"One-offs (single samples): the server's first run, plain text, {ms(results.first_floor)} ms "
        "(the assistant has the code_interpreter tool, so the run first checks that the sandbox works, "
        f"by starting and stopping a kernel); its first code run {ms(results.first_run)} ms; the "
        f"in-process sandbox's first call {ms(results.first_sandbox)} ms (with its set-up).\n"
    )
    print(f"(a) Cold start: a new session's first call, `{TRIVIAL}` ({args.cold} rounds)\n")
    print(calls_table(results.cold, results.cold[FLOOR]))
    print("\n" + shares(results.cold))
    print(
        f"\nResident memory after (c): the server {results.rss[0] / MIB:.0f} MiB, this process "
        f"{results.rss[1] / MIB:.0f} MiB (a process that forks copies its page tables).\n"
    )
    print(f"(b) Warm call: `{TRIVIAL}` on a session that ran it before ({args.warm} rounds)\n")
    print(calls_table(results.warm, results.warm[FLOOR]))
    print("\n" + shares(results.warm) + "\n")
    print(
        f"(c) First heavy import in a fresh kernel, then a plot ({args.heavy} rounds); a run's plot is "
        "also stored as a file\n"
    )
    print(heavy_table(results) + "\n")
    print(f"Breakdown of the import ({len(results.breakdown)} more fresh sandbox kernels)\n")
    print(breakdown_table(results) + "\n")
    print(
        f"(d) Memory per live kernel (kernel trees under the server process, /proc/<pid>/smaps_rollup; "
        f"default kernel limit, {limit})\n"
    )
    print(memory_table(results) + "\n")
    print(
        f"Cold start at the kernel limit: with all {limit} kernels alive, a new thread's first call "
        f"first stops the least recently used one; against one kernel below the limit (the least "
        f"recently used thread deleted first, untimed) and the floor, on the server of (d) after "
        f"`{TRIVIAL}` ({AT_LIMIT_ROUNDS} rounds)\n"
    )
    print(calls_table(results.at_limit, results.at_limit[FLOOR]) + "\n")
    print(f"Took {took:.0f} s.")


# -- main ----------------------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


@contextmanager
def serving(server: ServerProcess) -> Iterator[ServerProcess]:
    with running(server):
        try:
            yield server
        except BaseException:
            report_log(server, always=True)
            raise
        report_log(server, always=False)


def sandbox_settings(data_dir: Path, max_kernels: int) -> Settings:
    """The server's defaults, as the servers here get them: no ASSISTD_ variable of this environment."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("ASSISTD_")}
    try:
        return Settings(data_dir=data_dir, code_max_kernels=max_kernels)
    finally:
        os.environ.update(saved)


async def phase_calls(
    server: ServerProcess, data_dir: Path, args: argparse.Namespace, results: Results
) -> None:
    runs = Runs(server)
    other = LoopThread()
    try:
        await runs.setup()
        async with CodeSandbox(sandbox_settings(data_dir / "main", max_kernels=4)) as sandbox:
            plain = CodeSandbox(sandbox_settings(data_dir / "plain", max_kernels=2))
            await other.run(plain.start())
            try:
                await measure_calls(runs, Sandbox(sandbox), Sandbox(plain, other), args, results)
            finally:
                await other.run(plain.close())
    finally:
        other.stop()
        await runs.aclose()


async def phase_memory(
    server: ServerProcess, args: argparse.Namespace, code: str, state: str, results: Results
) -> None:
    runs = Runs(server)
    try:
        await runs.setup()
        threads = await measure_memory(runs, args.kernels, code, state, results)
        if code == TRIVIAL:
            await measure_at_limit(runs, max(args.kernels), threads, results)
    finally:
        await runs.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cold", type=int, default=20, help="(a) cold-start rounds (20)")
    parser.add_argument("--warm", type=int, default=30, help="(b) warm-call rounds (30)")
    parser.add_argument("--heavy", type=int, default=5, help="(c) heavy-import rounds (5)")
    parser.add_argument(
        "--kernels",
        type=lambda value: sorted({int(part) for part in value.split(",")}),
        default=[1, 4, 8],
        help="(d) live kernels to measure memory at; the largest is the servers' kernel limit (1,4,8)",
    )
    args = parser.parse_args(argv)
    if min(args.cold, args.warm, args.heavy, *args.kernels) < 1:
        parser.error("every count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("bwrap") is None:
        sys.exit("bench/code_interpreter.py needs bubblewrap (bwrap): see docs/code-interpreter.md")
    # Every client.beta call of the SDK warns that the Assistants API is deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    started = time.monotonic()
    results = Results()
    limit = max(args.kernels)
    with tempfile.TemporaryDirectory(prefix="assistd-bench-code-") as tmp:
        root = Path(tmp)
        # (a)-(c): room for every kernel they start (a cold run per round, one per heavy round, and
        # the warm-up, warm and first threads), so that no call stops another kernel first.
        room = args.cold + args.heavy + WARMUP + 4
        env = {"ASSISTD_CODE_MAX_KERNELS": str(room)}
        with serving(assistd_server(root, env, name="assistd-calls")) as server:
            progress(f"assistd on {server.url}")
            run_loop(phase_calls(server, root / "sandbox-data", args, results))
        limits = {"ASSISTD_CODE_MAX_KERNELS": str(limit)}
        for code, state in ((TRIVIAL, f"after `{TRIVIAL}`"), (HEAVY, f"after `{HEAVY}`")):
            name = "assistd-memory-" + ("trivial" if code == TRIVIAL else "heavy")
            with serving(assistd_server(root, limits, name=name)) as server:
                run_loop(phase_memory(server, args, code, state, results))
    report(results, args, limit, time.monotonic() - started)


if __name__ == "__main__":
    main()

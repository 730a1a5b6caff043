"""The worker: claims runs from the queue in the database and executes them, a bounded number at once.

It wakes when a run is queued in this process (``wake``) and otherwise polls, so runs queued by
another process or left behind by a dead worker (lapsed lease) are found too. It renews the leases of
the runs it executes, and sweeps runs that passed their deadline while no one executed them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from assistd import logs
from assistd.runs import states
from assistd.runs.executor import Engine, RunExecutor
from assistd.runs.lifecycle import finish_run
from assistd.store import queue
from assistd.types import Run

logger = logging.getLogger("assistd.worker")


class Worker:
    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int,
        lease_seconds: float,
        poll_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.id = f"wrk_{secrets.token_hex(8)}"
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.executors: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        # Whether the last look at the queue stopped for want of room rather than of runs.
        self._runs_may_wait = False
        self._background: list[asyncio.Task[None]] = []

    # -- control -----------------------------------------------------------------------------------

    def start(self) -> None:
        self.engine.bus.serve_worker(self.wake, self.cancel)
        self._background = [
            asyncio.create_task(self._claim_loop(), name="assistd-claim"),
            asyncio.create_task(
                self._every(self.lease_seconds / 3, self._heartbeat), name="assistd-heartbeat"
            ),
            asyncio.create_task(self._every(self.poll_seconds, self._sweep), name="assistd-sweeper"),
        ]

    def wake(self) -> None:
        """A run was queued or changed: look at the queue now rather than at the next poll."""
        self._wake.set()

    def cancel(self, run_id: str) -> None:
        """Stop the model call of the run if this worker executes it (its status is already
        ``cancelling``)."""
        entry = self.executors.get(run_id)
        if entry is not None:
            executor, task = entry
            executor.cancel_reason = "cancel"
            task.cancel()
        self.wake()

    async def stop(self, grace_seconds: float = 5.0) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks = [task for _, task in self.executors.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for executor, task in list(self.executors.values()):
                if task in pending:
                    executor.cancel_reason = "shutdown"
                    task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- loops -------------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                while True:
                    room = self.concurrency - len(self.executors)
                    if room <= 0:
                        self._runs_may_wait = True  # for a slot: look again when one frees up
                        break
                    bus = self.engine.bus
                    outboxes = []
                    async with self.engine.database.write() as conn:
                        claims = await queue.claim(
                            conn, self.id, self.lease_seconds, room, leased_by_caller={"queued"}
                        )
                        # Queued runs start in the claiming transaction, taking the lease in the same
                        # statement: one write fewer per run.
                        started: dict[str, Run | None] = {}
                        for claim in claims:
                            if claim.status != "queued":
                                continue
                            run = started[claim.run_id] = await states.transition(
                                conn,
                                claim.project_id,
                                claim.run_id,
                                expect={"queued"},
                                to="in_progress",
                                **queue.lease(self.id, self.lease_seconds),
                            )
                            if run is not None:
                                outbox = bus.outbox(run.id)
                                outbox.add("thread.run.in_progress", run)
                                await bus.write(conn, outbox)
                                outboxes.append(outbox)
                    for outbox in outboxes:
                        bus.send(outbox)
                    for claim in claims:
                        self._start(claim, started.get(claim.run_id))
                    if len(claims) < room:
                        self._runs_may_wait = False  # the queue is empty (as far as we know)
                        break
            except Exception:
                logger.exception("claiming runs failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _start(self, claim: queue.Claim, started: Run | None) -> None:
        executor = RunExecutor(self.engine, claim, started)
        # The task copies the context as it is now: its log records carry the run id.
        logs.RUN_ID.set(claim.run_id)
        try:
            task = asyncio.create_task(executor.execute(), name=f"assistd-run-{claim.run_id}")
        finally:
            logs.RUN_ID.set(None)
        self.executors[claim.run_id] = (executor, task)
        task.add_done_callback(lambda done: self._done(claim.run_id, done))

    def _done(self, run_id: str, task: asyncio.Task[None]) -> None:
        entry = self.executors.get(run_id)
        if entry is not None and entry[1] is task:
            del self.executors[run_id]
            if entry[0].released:
                if self._runs_may_wait:
                    self.wake()  # room for a run that waits; otherwise a claim would find nothing
            else:
                # Hand the run back (a cancel raced the executor's last step); the release wakes the
                # claim loop.
                asyncio.get_running_loop().create_task(self._release(run_id))
        if not task.cancelled() and task.exception() is not None:
            logger.error("executor of %s crashed", run_id, exc_info=task.exception())

    async def _release(self, run_id: str) -> None:
        try:
            async with self.engine.database.write() as conn:
                await queue.release(conn, self.id, run_id)
        except Exception:
            # The lease lapses by itself; the run is claimed again then.
            logger.exception("handing back %s failed", run_id)
        self.wake()

    async def _every(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await action()
            except Exception:
                logger.exception("background task of the worker failed; it will run again")

    async def _heartbeat(self) -> None:
        if self.executors:
            async with self.engine.database.write() as conn:
                cancelled = await queue.renew_leases(conn, self.id, list(self.executors), self.lease_seconds)
            # Normally the cancel's notice stopped them already; this catches one that was missed.
            for run_id in cancelled:
                entry = self.executors.get(run_id)
                if entry is not None and entry[0].cancel_reason is None:
                    self.cancel(run_id)

    async def _sweep(self) -> None:
        """Expire runs that outlived their deadline while nobody executed them."""
        async with self.engine.database.read() as conn:
            overdue = await queue.overdue(conn)
        for claim in overdue:
            await finish_run(
                self.engine.database,
                self.engine.bus,
                claim.project_id,
                claim.run_id,
                outcome="expired",
                expect={"queued", "requires_action"},
            )

"""Runs and their steps: create (also with a new thread), read, list, modify, cancel, tool outputs.

Services only write the request's effect and queue the run; the worker executes it (assistd.runs).
A client that streams subscribes to the run's events before the run is queued, so it misses none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd import tracing
from assistd.errors import InvalidRequest
from assistd.ids import Prefix, new_id, now
from assistd.protocol.common import dump_response_format
from assistd.protocol.pagination import Page, PageRequest
from assistd.protocol.runs import RunCreate, RunModify, RunOptions, SubmitToolOutputs, ThreadAndRunCreate
from assistd.protocol.threads import ThreadCreate
from assistd.runs import states, step_view
from assistd.runs.events import Subscription
from assistd.runs.lifecycle import finish_run
from assistd.runs.runtime import Runtime
from assistd.services.common import dump, dump_request
from assistd.services.limits import check_active_runs
from assistd.services.messages import new_message_row
from assistd.services.scope import Scope
from assistd.services.thread_guard import lock_for_new_run, missing_child, page_in_thread
from assistd.services.threads import insert_thread
from assistd.services.tool_resources import ResourceWriter, placed, resource_transaction
from assistd.services.vector_stores import VectorStoreService
from assistd.store import run_events, tables
from assistd.store.repositories import (
    AssistantRepository,
    MessageRepository,
    RunRepository,
    RunStepRepository,
)
from assistd.types import Assistant, Run, RunStep, Thread

DEFAULT_TRUNCATION = {"type": "auto", "last_messages": None}


@dataclass
class RunStart:
    """A queued run, and its events for a client that streams them."""

    run: Run
    events: Subscription | None = None
    thread: Thread | None = None


class RunService:
    def __init__(self, scope: Scope, runtime: Runtime, stores: VectorStoreService) -> None:
        self.scope = scope
        self.runtime = runtime
        self.stores = stores
        self.bus = runtime.engine.bus

    # -- starting runs -------------------------------------------------------------------------------

    async def create(
        self, thread_id: str, request: RunCreate, *, include_search_content: bool = False
    ) -> RunStart:
        """``include_search_content``: the stream's steps carry file_search results' text."""

        async def write(writer: ResourceWriter, run_id: str) -> tuple[Run, Thread | None]:
            conn = writer.conn
            await lock_for_new_run(conn, self.scope.project_id, thread_id)
            if request.additional_messages:
                await writer.attach_to_thread(
                    thread_id, placed("additional_messages", request.additional_messages)
                )
                rows = [new_message_row(thread_id, m, now()) for m in request.additional_messages]
                await MessageRepository(conn, self.scope.project_id).insert_many(rows)
            run = await self._insert_run(
                conn,
                run_id,
                thread_id,
                request,
                additional_instructions=request.additional_instructions,
                reasoning_effort=request.reasoning_effort,
            )
            return run, None

        return await self._start(write, stream=bool(request.stream), detailed=include_search_content)

    async def create_thread_and_run(self, request: ThreadAndRunCreate) -> RunStart:
        async def write(writer: ResourceWriter, run_id: str) -> tuple[Run, Thread | None]:
            thread = await insert_thread(
                writer,
                _thread_request(request),
                # Top-level tool_resources are the thread's, and take the place of the thread's own.
                resources_param="tool_resources"
                if request.tool_resources is not None
                else "thread.tool_resources",
                messages_param="thread.messages",
            )
            run = await self._insert_run(writer.conn, run_id, thread.id, request)
            return run, thread

        return await self._start(write, stream=bool(request.stream))

    async def _start(
        self,
        write: Callable[[ResourceWriter, str], Awaitable[tuple[Run, Thread | None]]],
        *,
        stream: bool,
        detailed: bool = False,
    ) -> RunStart:
        run_id = new_id(Prefix.RUN)
        events = self.bus.subscribe(run_id, detailed=detailed) if stream else None
        outbox = self.bus.outbox(run_id)
        try:
            # Files the request attached are handed to the indexer once this has committed.
            async with resource_transaction(self.stores) as writer:
                await check_active_runs(writer.conn, self.scope.project_id, self.runtime.max_active_runs)
                run, thread = await write(writer, run_id)
                if thread is not None:
                    outbox.add("thread.created", thread)
                outbox.add("thread.run.created", run)
                outbox.add("thread.run.queued", run)
                outbox.wake_workers()
                await self.bus.write(writer.conn, outbox)
        except BaseException:
            if events is not None:
                events.close()
            raise
        self.bus.send(outbox)
        if events is not None:
            events.start_after(outbox.seq_before)
        return RunStart(run=run, events=events, thread=thread)

    async def _insert_run(
        self,
        conn: AsyncConnection,
        run_id: str,
        thread_id: str,
        options: RunOptions,
        *,
        additional_instructions: str | None = None,
        reasoning_effort: str | None = None,
    ) -> Run:
        assistant = await AssistantRepository(conn, self.scope.project_id).require(options.assistant_id)
        tools = (
            [dump_request(tool) for tool in options.tools]
            if options.tools is not None
            else [dump(tool) for tool in assistant.tools]
        )
        tool_choice = _checked_tool_choice(options, tools)
        clock = now()
        values = {
            "id": run_id,
            "created_at": clock,
            "thread_id": thread_id,
            "assistant_id": assistant.id,
            "status": "queued",
            "required_action": None,
            "last_error": None,
            "expires_at": clock + self.runtime.run_ttl_seconds,
            "started_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "incomplete_details": None,
            "model": options.model or assistant.model,
            "instructions": _instructions(options, assistant, additional_instructions),
            "tools": tools,
            "metadata": options.metadata or {},
            "usage": None,
            "temperature": _first(options.temperature, assistant.temperature, 1.0),
            "top_p": _first(options.top_p, assistant.top_p, 1.0),
            "max_prompt_tokens": options.max_prompt_tokens,
            "max_completion_tokens": options.max_completion_tokens,
            "truncation_strategy": (
                dump_request(options.truncation_strategy)
                | {"last_messages": options.truncation_strategy.last_messages}
                if options.truncation_strategy is not None
                else DEFAULT_TRUNCATION
            ),
            "tool_choice": tool_choice,
            "parallel_tool_calls": True
            if options.parallel_tool_calls is None
            else options.parallel_tool_calls,
            "response_format": _response_format(options, assistant),
            "reasoning_effort": reasoning_effort,
            "trace_parent": tracing.traceparent(),
        }
        return await RunRepository(conn, self.scope.project_id).insert(values)

    # -- reading and changing runs -------------------------------------------------------------------

    async def get(self, thread_id: str, run_id: str) -> Run:
        async with self.scope.database.read() as conn:
            return await self._run(conn, thread_id, run_id)

    async def list(self, thread_id: str, page: PageRequest) -> Page[Run]:
        async with self.scope.database.read() as conn:
            repository = RunRepository(conn, self.scope.project_id)
            return await page_in_thread(
                conn,
                self.scope.project_id,
                thread_id,
                lambda: repository.page(page, tables.runs.c.thread_id == thread_id),
            )

    async def modify(self, thread_id: str, run_id: str, request: RunModify) -> Run:
        async with self.scope.database.write() as conn:
            await self._run(conn, thread_id, run_id)
            run = await RunRepository(conn, self.scope.project_id).update(
                run_id, {"metadata": request.metadata or {}}
            )
        assert run is not None
        return run

    async def cancel(self, thread_id: str, run_id: str) -> Run:
        async with self.bus.writing(self.scope.database, run_id) as (conn, outbox):
            current = await self._run(conn, thread_id, run_id)
            holder = await conn.scalar(select(tables.runs.c.lease_owner).where(tables.runs.c.id == run_id))
            run = await states.transition(
                conn,
                self.scope.project_id,
                run_id,
                expect={"queued", "in_progress", "requires_action"},
                to="cancelling",
            )
            if run is None:
                raise InvalidRequest(f"Cannot cancel run with status '{current.status}'.")
            outbox.add("thread.run.cancelling", run)
            if holder is not None:
                outbox.cancel_run()  # its worker, wherever it is, stops the model call
        if holder is None:
            # Nobody executes it (queued, or waiting for tool outputs): it ends here, without waiting
            # for a free worker. Should a worker claim it meanwhile, its compare-and-set loses.
            await finish_run(
                self.scope.database,
                self.bus,
                self.scope.project_id,
                run_id,
                outcome="cancelled",
                expect={"cancelling"},
            )
        return run

    async def submit_tool_outputs(self, thread_id: str, run_id: str, request: SubmitToolOutputs) -> RunStart:
        events = self.bus.subscribe(run_id) if request.stream else None
        try:
            async with self.bus.writing(self.scope.database, run_id) as (conn, outbox):
                step, run = await self._accept_outputs(conn, thread_id, run_id, request)
                # A step can hold calls to the server's tools beside the functions: clients see it as
                # any step.
                outbox.add("thread.run.step.completed", step_view.wire_step(step, include_content=False))
                outbox.add("thread.run.queued", run)
                outbox.wake_workers()
        except BaseException:
            if events is not None:
                events.close()
            raise
        if events is not None:
            events.start_after(outbox.seq_before)
        return RunStart(run=run, events=events)

    async def _accept_outputs(
        self, conn: AsyncConnection, thread_id: str, run_id: str, request: SubmitToolOutputs
    ) -> tuple[RunStep, Run]:
        run = await self._run(conn, thread_id, run_id)
        if run.status != "requires_action" or run.required_action is None:
            raise InvalidRequest(f'Runs in status "{run.status}" do not accept tool outputs.')
        pending = [call.id for call in run.required_action.submit_tool_outputs.tool_calls]
        given = [output.tool_call_id for output in request.tool_outputs]
        for index, call_id in enumerate(given):
            if call_id not in pending:
                raise InvalidRequest(
                    f"No tool call found with id '{call_id}' awaiting an output.",
                    param=f"tool_outputs[{index}].tool_call_id",
                )
            if given.index(call_id) != index:
                raise InvalidRequest(
                    f"Duplicate output for tool call '{call_id}'.",
                    param=f"tool_outputs[{index}].tool_call_id",
                )
        missing = [call_id for call_id in pending if call_id not in given]
        if missing:
            raise InvalidRequest(
                f"Expected tool outputs for call ids {pending}, but received only {given}; "
                f"missing {missing}.",
                param="tool_outputs",
            )

        steps = RunStepRepository(conn, self.scope.project_id)
        step_id = await conn.scalar(
            select(tables.run_steps.c.id).where(
                tables.run_steps.c.run_id == run_id,
                tables.run_steps.c.type == "tool_calls",
                tables.run_steps.c.status == "in_progress",
            )
        )
        step = await steps.get(step_id) if step_id else None
        if step is None:
            raise InvalidRequest(f"Run {run_id} has no tool call step awaiting outputs.")
        outputs = {output.tool_call_id: output.output for output in request.tool_outputs}
        details = dump(step.step_details)
        for call in details["tool_calls"]:
            if call["type"] == "function":
                call["function"]["output"] = outputs.get(call["id"])
        completed = await steps.update(
            step.id, {"step_details": details, "status": "completed", "completed_at": now()}
        )
        queued = await states.transition(
            conn,
            self.scope.project_id,
            run_id,
            expect={"requires_action"},
            to="queued",
            trace_parent=tracing.traceparent(),
        )
        if completed is None or queued is None:
            raise InvalidRequest(f"Run {run_id} stopped waiting for tool outputs.")
        return completed, queued

    async def resume_stream(
        self, thread_id: str, run_id: str, after: int, *, detailed: bool
    ) -> Subscription | None:
        """The run's events after its event ``after``, up to the next that ends a stream; None if there
        are none and will be none (the run is over, or waits for tool outputs)."""
        if not self.bus.stores_events:
            raise InvalidRequest(
                "Resuming a run's stream needs the PostgreSQL database: the embedded mode keeps no events."
            )
        events = self.bus.subscribe(run_id, detailed=detailed, after=after)
        try:
            async with self.scope.database.read() as conn:
                run = await self._run(conn, thread_id, run_id)
                last = await run_events.last_seq(conn, run_id)
        except BaseException:
            events.close()
            raise
        # Checked after subscribing: events that come after the check reach the subscription.
        if run.status in ("queued", "in_progress", "cancelling") or last > after:
            return events
        events.close()
        return None

    # -- steps ---------------------------------------------------------------------------------------

    async def list_steps(self, thread_id: str, run_id: str, page: PageRequest) -> Page[RunStep]:
        async with self.scope.database.read() as conn:
            await self._run(conn, thread_id, run_id)
            return await RunStepRepository(conn, self.scope.project_id).page(
                page, tables.run_steps.c.run_id == run_id
            )

    async def get_step(self, thread_id: str, run_id: str, step_id: str) -> RunStep:
        async with self.scope.database.read() as conn:
            await self._run(conn, thread_id, run_id)
            return await RunStepRepository(conn, self.scope.project_id).require(step_id, parent_id=run_id)

    # -- helpers -------------------------------------------------------------------------------------

    async def _run(self, conn: AsyncConnection, thread_id: str, run_id: str) -> Run:
        run = await RunRepository(conn, self.scope.project_id).get(run_id, parent_id=thread_id)
        if run is None:
            raise await missing_child(conn, self.scope.project_id, thread_id, "run", run_id)
        return run


def _thread_request(request: ThreadAndRunCreate) -> ThreadCreate:
    """The thread to create; the request's top-level tool_resources are the thread's."""
    thread = request.thread or ThreadCreate()
    if request.tool_resources is not None:
        thread = thread.model_copy(update={"tool_resources": request.tool_resources})
    return thread


def _first(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _instructions(options: RunOptions, assistant: Assistant, additional: str | None) -> str:
    base = options.instructions if options.instructions is not None else (assistant.instructions or "")
    if additional:
        return f"{base}\n\n{additional}" if base else additional
    return base


def _response_format(options: RunOptions, assistant: Assistant) -> Any:
    if options.response_format is not None:
        return dump_response_format(options.response_format)
    if assistant.response_format is None or isinstance(assistant.response_format, str):
        return assistant.response_format or "auto"
    return dump(assistant.response_format)


def _checked_tool_choice(options: RunOptions, tools: list[dict[str, Any]]) -> Any:
    choice = options.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    if choice.type == "function":
        names = {tool["function"]["name"] for tool in tools if tool["type"] == "function"}
        if choice.function.name not in names:
            raise InvalidRequest(
                f"Invalid 'tool_choice': the run has no function named '{choice.function.name}'.",
                param="tool_choice",
            )
    elif choice.type not in {tool["type"] for tool in tools}:
        raise InvalidRequest(
            f"Invalid 'tool_choice': the run has no {choice.type} tool.", param="tool_choice"
        )
    return dump_request(choice)

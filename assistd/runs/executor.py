"""Drives one claimed run: model turns, steps, messages, tool calls, and the events of each.

A turn is one model call. Its text becomes a ``message_creation`` step with an assistant message, its
calls a ``tool_calls`` step. Calls to the server's own tools (file_search, code_interpreter) run here,
one after the other, and the next turn reads their results at once (at most ``MAX_TOOL_TURNS`` such
turns in a row); function calls pause the run in ``requires_action`` until the client submits their
outputs, after which a worker claims the run again and the next turn sees them. State is written
before each event is published. Text is written as it streams, at most every ``FLUSH_SECONDS``, and in
full when the message ends, so a crash loses at most that much.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd import tracing
from assistd.backends.base import (
    BackendError,
    ChatBackend,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistd.backends.embeddings import EmbeddingBackend
from assistd.backends.routing import ModelNotFound, ModelRouter, Target
from assistd.ids import Prefix, new_id, now
from assistd.runs import code_interpreter, file_search, states, step_view
from assistd.runs.annotations import Annotations
from assistd.runs.events import EventBus, Outbox
from assistd.runs.lifecycle import discard_unfinished, finish_run
from assistd.runs.prompt import Prompt, build_prompt
from assistd.runs.streamed_json import StreamedField
from assistd.sandbox import CodeSandbox
from assistd.services.messages import text_part
from assistd.store import queue, tables
from assistd.store.blobs import BlobStore
from assistd.store.database import Database
from assistd.store.queue import Claim
from assistd.store.repositories import MessageRepository, RunRepository, RunStepRepository
from assistd.types import Message, Run, RunStep

logger = logging.getLogger("assistd.runs")

FLUSH_SECONDS = 0.5
# Turns in a row that only used the server's tools (searched, ran code): after these the model must
# answer with what it has, so a model that keeps calling them cannot spin until the run expires.
MAX_TOOL_TURNS = 8
INTERRUPTED = {
    "code": "server_error",
    "message": "The run was interrupted: the worker executing it stopped. Create a new run to retry.",
}
INTERNAL = {"code": "server_error", "message": "The server had an error while processing the run."}


@dataclass
class Engine:
    """What executors need from the process: storage, events, models, and the server's tools
    (embeddings for file_search, the sandbox and file storage for code_interpreter)."""

    database: Database
    bus: EventBus
    models: ModelRouter
    embeddings: EmbeddingBackend
    blobs: BlobStore
    sandbox: CodeSandbox | None  # None: code_interpreter is not offered by this process
    max_file_bytes: int  # the largest file code_interpreter may hand back
    # How many times a run whose worker died is taken over (its turn done again) before it fails.
    max_takeovers: int = 2


@dataclass
class _ToolCall:
    index: int  # its place in the step's tool_calls: the order calls began in, whatever the model numbers
    id: str = ""
    name: str = ""
    arguments: str = ""
    code: StreamedField = field(default_factory=lambda: StreamedField("code"))
    # Step deltas held back: the SDK takes a delta of another index for the start of another call, so a
    # call's deltas go out only once the calls before it are done (see ``_send_delta``).
    held: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Turn:
    """What the current model call has produced so far."""

    annotations: Annotations = field(default_factory=lambda: Annotations([], {}))
    offered: frozenset[str] = frozenset()  # the server's tools offered to the model this turn
    images: list[str] = field(default_factory=list)  # image files the turn's message shows first
    last_annotations: list[dict[str, Any]] = field(default_factory=list)  # found as the message closed
    message_step_id: str | None = None
    message_id: str | None = None
    text: str = ""
    flushed_text: str = ""
    flushed_at: float = 0.0
    tool_step_id: str | None = None
    calls: dict[int, _ToolCall] = field(default_factory=dict)  # by the model's index
    live_call: int = 0  # the wire index of the call whose step deltas go out as they come


class RunExecutor:
    def __init__(self, engine: Engine, claim: Claim, started: Run | None = None) -> None:
        """``started``: for a claim of a queued run, the run as the claim moved it to in_progress
        (None if it could not be: it was cancelled or expired meanwhile)."""
        self.db = engine.database
        self.bus = engine.bus
        self.models = engine.models
        self.embeddings = engine.embeddings
        self.engine = engine
        self.claim = claim
        self.started = started
        self.project_id = claim.project_id
        self.run_id = claim.run_id
        self.cancel_reason: str | None = None  # set by the worker before it cancels the task
        # Whether this executor's last transition let go of the run's lease (ended it, or paused it for
        # tool outputs). If not, the worker hands the lease back itself.
        self.released = False
        self.turn = _Turn()
        self._outbox: Outbox | None = None  # while in _changing
        # This execution's span (the no-op one while tracing is off); the outcome goes on it where it is
        # decided.
        self.span: tracing.Span = tracing.OFF

    # -- entry -------------------------------------------------------------------------------------

    async def execute(self) -> None:
        attributes = {"assistd.run_id": self.run_id, "assistd.project_id": self.project_id}
        with tracing.span("assistd.run", attributes, link=self.claim.trace_parent) as self.span:
            await self._execute()

    async def _execute(self) -> None:
        if self.claim.status == "cancelling":
            await self._finish("cancelled", expect={"cancelling"})
            return
        run = self.started
        if self.claim.status == "in_progress":
            # Claimed because the lease of the worker that ran it lapsed: that worker is gone.
            run = await self._take_over()
        if run is None:
            return  # cancelled or expired meanwhile: the worker or the sweeper sees to it
        try:
            try:
                # An active run's expires_at is its deadline (it becomes null only once the run ends).
                async with asyncio.timeout(max((run.expires_at or 0) - time.time(), 0.001)):
                    await self._drive(run)
            except TimeoutError:
                await self._flush()
                await self._finish("expired", expect={"in_progress"})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._flush()
            if self.cancel_reason == "shutdown":
                await self._hand_back()
            else:
                await self._finish("cancelled", expect={"cancelling"})
        except BackendError as error:
            await self._flush()
            last_error = {"code": error.code, "message": error.message}
            await self._finish("failed", expect={"in_progress"}, last_error=last_error)
        except Exception:
            logger.exception("run %s failed", self.run_id)
            await self._flush()
            await self._finish("failed", expect={"in_progress"}, last_error=INTERNAL)

    async def _hand_back(self) -> None:
        """The process stops before the run is done: another worker (or this server's next start) takes
        it over at once; a run being cancelled is cancelled now."""
        async with self.db.write() as conn:
            await queue.hand_back(conn, self.run_id)
        self.span.set_attribute("assistd.run.handed_back", True)
        await self._finish("cancelled", expect={"cancelling"})

    async def _take_over(self) -> Run | None:
        """Go on with a run whose worker died: its unfinished turn is done again from the start. The
        turn's open message and step (text the dead worker had not finished) are removed; what earlier
        turns finished stays. A run taken over too often fails instead: it may be what kills workers."""
        async with self._changing() as conn:
            attempts = int(
                await conn.scalar(select(tables.runs.c.attempts).where(tables.runs.c.id == self.run_id)) or 0
            )
            if attempts >= self.engine.max_takeovers:
                run = None
            else:
                await discard_unfinished(conn, self.project_id, self.run_id)
                run = await RunRepository(conn, self.project_id).update(
                    self.run_id, {"attempts": attempts + 1}, tables.runs.c.status == "in_progress"
                )
        if run is None:
            await self._finish("failed", expect={"in_progress"}, last_error=INTERRUPTED)
        else:
            logger.info("took over run %s (takeover %d)", self.run_id, attempts + 1)
            self.span.set_attribute("assistd.run.takeover", attempts + 1)
        return run

    async def _finish(
        self, outcome: str, *, expect: set[str], last_error: dict[str, Any] | None = None
    ) -> None:
        ended = await finish_run(
            self.db,
            self.bus,
            self.project_id,
            self.run_id,
            outcome=outcome,
            expect=expect,
            last_error=last_error,
        )
        self.released = ended is not None
        if ended is not None:
            logger.info("run %s%s", outcome, f": {last_error['message']}" if last_error else "")
            self.span.set_attribute("assistd.run.status", outcome)
            if last_error is not None:
                self.span.set_error(last_error["code"], last_error["message"])

    # -- a turn ------------------------------------------------------------------------------------

    async def _drive(self, run: Run) -> None:
        self.span.set_attributes(
            {
                "assistd.thread_id": run.thread_id,
                "assistd.assistant_id": run.assistant_id,
                "assistd.model": run.model,
            }
        )
        try:
            target = self.models.resolve(run.model)
        except ModelNotFound as missing:
            raise BackendError(f"The model '{missing.name}' does not exist.", "invalid_prompt") from None
        await self._check_sandbox(run)
        tool_turns = 0
        while True:
            async with self.db.read() as conn:
                prompt = await build_prompt(conn, run, self.project_id)
            if not await self._turn_goes_on(run, target, prompt, offer_tools=tool_turns < MAX_TOOL_TURNS):
                return
            tool_turns += 1

    async def _check_sandbox(self, run: Run) -> None:
        """A run with code_interpreter fails at once where code cannot run, saying why."""
        if not any(tool.type == code_interpreter.NAME for tool in run.tools):
            return
        sandbox = self.engine.sandbox
        reason = "it is turned off" if sandbox is None else await sandbox.available()
        if reason is not None:
            raise BackendError(f"code_interpreter is unavailable on this server: {reason}")

    async def _turn_goes_on(self, run: Run, target: Target, prompt: Prompt, *, offer_tools: bool) -> bool:
        """One model call and what follows from it; whether the run needs another turn (the model used
        the server's tools, and reads their results next)."""
        used = prompt.earlier_usage
        offered = frozenset(
            name
            for name, available in (
                (file_search.NAME, file_search.settings(run) is not None),
                (code_interpreter.NAME, any(tool.type == code_interpreter.NAME for tool in run.tools)),
            )
            if available and offer_tools
        )
        request = self._request(run, prompt, target, offered)
        if isinstance(request, str):
            async with self._changing() as conn:
                ended = await self._end(conn, used, incomplete=request)
                self._publish_end(ended)
            return False

        self.turn = _Turn(
            annotations=Annotations(prompt.searches, code_interpreter.written_files(prompt.code_calls)),
            offered=offered,
            images=[i for i in code_interpreter.images(prompt.code_calls) if i not in prompt.shown_images],
        )
        finish: Finish | None = None
        async for chunk in target.stream(request):
            if isinstance(chunk, TextDelta):
                await self._on_text(run, chunk.text)
            elif isinstance(chunk, ToolCallDelta):
                await self._on_tool_call(run, chunk)
            elif isinstance(chunk, Finish):
                finish = chunk
        if finish is None:
            raise BackendError("The model's answer ended before it was complete.")

        if self.turn.calls and finish.reason == "length":
            await self._end_cut_off(used, finish.usage)
            return False
        if self.turn.calls:
            return await self._run_tool_calls(run, request.messages, finish.usage)
        total = used + finish.usage
        budget_hit = finish.reason == "length" and run.max_completion_tokens is not None
        if self.turn.message_id is None:
            await self._open_message(run)  # the model said nothing: still one (empty) message
        # The last message and the run end in one transaction: one round of waiting for the writer.
        async with self._changing() as conn:
            closed = await self._close_message(conn, finish.usage, incomplete=budget_hit)
            ended = await self._end(conn, total, incomplete="max_completion_tokens" if budget_hit else None)
            self._publish_closed(*closed)
            self._publish_end(ended)
        return False

    def _request(
        self, run: Run, prompt: Prompt, target: Target, offered: frozenset[str]
    ) -> ChatRequest | str:
        """This turn's model call (``offered``: the server's tools it may call), or the reason the run
        ends incomplete before it."""
        chat, used = prompt.messages, prompt.earlier_usage
        tools = [tool.model_dump(exclude_none=True) for tool in run.tools if tool.type == "function"]
        tools += [_FUNCTIONS[name] for name in sorted(offered)]
        # A server tool counts as done once the run has used it, or when it is not offered any more.
        done = set(step_view.SERVER_TOOLS) - offered
        done |= {file_search.NAME} if prompt.searches else set()
        done |= {code_interpreter.NAME} if prompt.code_calls else set()
        tool_choice = _tool_choice(run, chat, done=done)
        if run.max_prompt_tokens is not None:
            fitted = _fit(chat, target.backend, run.max_prompt_tokens, auto=_auto_truncation(run))
            if fitted is None:
                return "max_prompt_tokens"
            chat = fitted
        max_tokens = None
        if run.max_completion_tokens is not None:
            max_tokens = run.max_completion_tokens - used.completion_tokens
            if max_tokens <= 0:
                return "max_completion_tokens"
        if target.limits.max_output_tokens is not None:
            max_tokens = min(max_tokens or target.limits.max_output_tokens, target.limits.max_output_tokens)
        if target.limits.context_window is not None and _auto_truncation(run):
            # The model's own window: the oldest messages give way, leaving room for the answer.
            room = target.limits.context_window - (max_tokens or 0)
            chat = _fit(chat, target.backend, room, auto=True) or chat
        response_format = run.response_format
        return ChatRequest(
            model=target.model,
            messages=chat,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=run.parallel_tool_calls,
            response_format=(
                None
                if response_format is None or isinstance(response_format, str)
                else response_format.model_dump(by_alias=True, exclude_none=True)
            ),
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
        )

    async def _end(self, conn: AsyncConnection, total: Usage, *, incomplete: str | None) -> Run | None:
        """The run is over (completed, or incomplete for ``incomplete``); None if it was not in progress."""
        fields: dict[str, Any] = {"usage": total.wire()}
        if incomplete is not None:
            fields["incomplete_details"] = {"reason": incomplete}
        return await states.transition(
            conn,
            self.project_id,
            self.run_id,
            expect={"in_progress"},
            to="incomplete" if incomplete else "completed",
            **fields,
        )

    def _publish_end(self, run: Run | None) -> None:
        if run is not None:
            logger.info("run %s", run.status)
            self.span.set_attribute("assistd.run.status", run.status)
            self.released = True
            self._emit(states.event_name(run), run)

    # -- text --------------------------------------------------------------------------------------

    async def _open_message(self, run: Run) -> None:
        clock = now()
        message_id, step_id = new_id(Prefix.MESSAGE), new_id(Prefix.STEP)
        async with self.db.write() as conn:
            message = await MessageRepository(conn, self.project_id).insert(
                {
                    "id": message_id,
                    "created_at": clock,
                    "thread_id": run.thread_id,
                    "status": "in_progress",
                    "incomplete_details": None,
                    "completed_at": None,
                    "incomplete_at": None,
                    "role": "assistant",
                    "content": [],
                    "assistant_id": run.assistant_id,
                    "run_id": run.id,
                    "attachments": [],
                    "metadata": {},
                }
            )
            step = await RunStepRepository(conn, self.project_id).insert(
                self._step_row(
                    run,
                    step_id,
                    clock,
                    {"type": "message_creation", "message_creation": {"message_id": message_id}},
                )
            )
        self.turn.message_id, self.turn.message_step_id = message_id, step_id
        self.turn.flushed_at = time.monotonic()
        self._emit("thread.run.step.created", step)
        self._emit("thread.run.step.in_progress", step)
        self._emit("thread.message.created", message)
        self._emit("thread.message.in_progress", message)
        if self.turn.images:
            # The figures the run's code showed come first in the message, as in OpenAI's.
            parts = [{"index": index} | part for index, part in enumerate(self._image_parts())]
            self._publish_message_delta(parts)

    async def _on_text(self, run: Run, piece: str) -> None:
        if self.turn.message_id is None:
            await self._open_message(run)
        turn = self.turn
        turn.text += piece
        self._publish_text_delta(piece, turn.annotations.scan(turn.text))
        if time.monotonic() - self.turn.flushed_at >= FLUSH_SECONDS:
            await self._flush()

    def _publish_text_delta(self, piece: str, found: list[dict[str, Any]]) -> None:
        annotations = self.turn.annotations.deltas(found)
        text = {"value": piece, "annotations": annotations}
        self._publish_message_delta([{"index": len(self.turn.images), "type": "text", "text": text}])

    def _publish_message_delta(self, parts: list[dict[str, Any]]) -> None:
        self._emit(
            "thread.message.delta",
            {"id": self.turn.message_id, "object": "thread.message.delta", "delta": {"content": parts}},
        )

    def _image_parts(self) -> list[dict[str, Any]]:
        return [{"type": "image_file", "image_file": {"file_id": file_id}} for file_id in self.turn.images]

    def _content(self) -> list[dict[str, Any]]:
        """The open message's content so far: the run's figures, then the text with its annotations."""
        return [*self._image_parts(), text_part(self.turn.text, self.turn.annotations.annotations)]

    async def _flush(self) -> None:
        """Write the text streamed so far to the open message."""
        turn = self.turn
        if turn.message_id is None or turn.text == turn.flushed_text:
            return
        async with self.db.write() as conn:
            await MessageRepository(conn, self.project_id).update(
                turn.message_id, {"content": self._content()}
            )
        turn.flushed_text, turn.flushed_at = turn.text, time.monotonic()

    async def _close_message(
        self, conn: AsyncConnection, usage: Usage, *, incomplete: bool
    ) -> tuple[Message, RunStep]:
        """End the turn's message and its step; the caller publishes them after its commit."""
        turn = self.turn
        assert turn.message_id is not None
        assert turn.message_step_id is not None
        clock = now()
        # The text is complete: a link at its very end is complete too (sent with the message's end).
        turn.last_annotations = turn.annotations.scan(turn.text, final=True)
        message_fields: dict[str, Any] = {"content": self._content()}
        if incomplete:
            message_fields |= {
                "status": "incomplete",
                "incomplete_at": clock,
                "incomplete_details": {"reason": "max_tokens"},
            }
        else:
            message_fields |= {"status": "completed", "completed_at": clock}
        message = await MessageRepository(conn, self.project_id).update(turn.message_id, message_fields)
        step = await RunStepRepository(conn, self.project_id).update(
            turn.message_step_id, {"status": "completed", "completed_at": clock, "usage": usage.wire()}
        )
        assert message is not None
        assert step is not None
        return message, step

    def _publish_closed(self, message: Message, step: RunStep) -> None:
        turn = self.turn
        if turn.last_annotations:
            self._publish_text_delta("", turn.last_annotations)
        self._emit(f"thread.message.{message.status}", message)
        self._emit("thread.run.step.completed", step)
        # Text the model writes after this (after a tool call of the same turn) is another message.
        turn.message_id = turn.message_step_id = None
        turn.text = turn.flushed_text = ""
        turn.annotations, turn.images, turn.last_annotations = turn.annotations.fresh(), [], []

    # -- tool calls --------------------------------------------------------------------------------

    async def _on_tool_call(self, run: Run, delta: ToolCallDelta) -> None:
        turn = self.turn
        if turn.message_id is not None:
            # Text, then a tool call in the same turn: the message is done. The turn's usage is only
            # known at its end and goes to the tool step.
            async with self.db.write() as conn:
                closed = await self._close_message(conn, Usage(0, 0), incomplete=False)
            self._publish_closed(*closed)
        if turn.tool_step_id is None:
            turn.tool_step_id = new_id(Prefix.STEP)
            async with self.db.write() as conn:
                step = await RunStepRepository(conn, self.project_id).insert(
                    self._step_row(run, turn.tool_step_id, now(), {"type": "tool_calls", "tool_calls": []})
                )
            self._emit("thread.run.step.created", step)
            self._emit("thread.run.step.in_progress", step)

        call = turn.calls.get(delta.index)
        if call is None:
            call = turn.calls[delta.index] = _ToolCall(index=len(turn.calls))
        call.arguments += delta.arguments
        opening = bool(delta.id and not call.id)
        if opening:
            call.id, call.name = delta.id or "", delta.name or ""
        kind = self._kind(call)
        fragment: dict[str, Any] = {"index": call.index, "type": kind}
        if kind == file_search.NAME:
            # Clients see a search start; its query is the model's own, its results come with the
            # completed step.
            if not opening:
                return
            fragment |= {"id": call.id, file_search.NAME: {}}
        elif kind == code_interpreter.NAME:
            code = call.code.feed(call.arguments)  # the code grows as the model writes it
            if opening:
                fragment |= {"id": call.id, code_interpreter.NAME: {"input": code, "outputs": []}}
            elif code:
                fragment[code_interpreter.NAME] = {"input": code}
            else:
                return
        elif opening:
            fragment |= {
                "id": call.id,
                "function": {"name": call.name, "arguments": delta.arguments, "output": None},
            }
        else:
            fragment["function"] = {"arguments": delta.arguments}
        self._send_delta(call, fragment)

    def _send_delta(self, call: _ToolCall, fragment: dict[str, Any]) -> None:
        """A step delta of ``call``, now if it is the live call, else once the calls before it are done."""
        if call.index != self.turn.live_call:
            call.held.append(fragment)
            return
        self._emit(
            "thread.run.step.delta",
            {
                "id": self.turn.tool_step_id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [fragment]}},
            },
        )

    def _go_live(self, call: _ToolCall) -> None:
        """The calls before ``call`` are done: its held deltas go out, and later ones as they come."""
        self.turn.live_call = call.index
        held, call.held = call.held, []
        for fragment in held:
            self._send_delta(call, fragment)

    async def _close_trailing_text(self) -> None:
        """Text the model wrote after its calls, in the same turn, is a message of its own, done now."""
        if self.turn.message_id is not None:
            async with self.db.write() as conn:
                closed = await self._close_message(conn, Usage(0, 0), incomplete=False)
            self._publish_closed(*closed)

    async def _end_cut_off(self, used: Usage, usage: Usage) -> None:
        """The token limit cut the model off while it wrote its calls: none can be trusted to be whole,
        so none runs, and the run ends incomplete."""
        turn = self.turn
        assert turn.tool_step_id is not None
        total = used + usage
        closed = None
        async with self._changing() as conn:
            if turn.message_id is not None:
                closed = await self._close_message(conn, Usage(0, 0), incomplete=True)
            step = await RunStepRepository(conn, self.project_id).update(
                turn.tool_step_id,
                {
                    "status": "failed",
                    "failed_at": now(),
                    "usage": usage.wire(),
                    "last_error": {
                        "code": "server_error",
                        "message": "The model reached its token limit while it wrote this step's tool calls.",
                    },
                },
            )
            ended = await self._end(conn, total, incomplete="max_completion_tokens")
            if closed is not None:
                self._publish_closed(*closed)
            assert step is not None
            self._publish_step("thread.run.step.failed", step)
            self._publish_end(ended)

    def _kind(self, call: _ToolCall) -> str:
        """The call's tool: one of the server's offered this turn (which the server runs), or a
        function (which the client runs)."""
        return call.name if call.name in self.turn.offered else "function"

    async def _run_tool_calls(self, run: Run, chat: list[dict[str, Any]], usage: Usage) -> bool:
        """Run the turn's calls to the server's tools (``chat``: what the model was given); then either
        wait for the client's function outputs (False), or go on to the next turn, which reads the
        results (True)."""
        turn = self.turn
        assert turn.tool_step_id is not None
        await self._close_trailing_text()
        functions = {tool.function.name for tool in run.tools if tool.type == "function"}
        calls = sorted(turn.calls.values(), key=lambda call: call.index)
        for_client = [call for call in calls if self._kind(call) == "function"]
        unknown = [call.name for call in for_client if call.name not in functions]
        if unknown:
            raise BackendError(f"The model called {unknown[0]!r}, which is not a function of this run.")
        details: list[dict[str, Any]] = []
        for call in calls:
            self._go_live(call)
            done, outputs = await self._run_call(run, chat, call)
            details.append(done)
            if self._kind(call) != "function":
                # What a call did is on record before its outputs are shown, and before a later call
                # of the turn can fail the run.
                async with self.db.write() as conn:
                    await RunStepRepository(conn, self.project_id).update(
                        turn.tool_step_id, {"step_details": {"type": "tool_calls", "tool_calls": details}}
                    )
            if outputs is not None:
                self._send_delta(call, outputs)
        step_details = {"type": "tool_calls", "tool_calls": details}

        if not for_client:
            async with self.db.write() as conn:
                step = await RunStepRepository(conn, self.project_id).update(
                    turn.tool_step_id,
                    {
                        "step_details": step_details,
                        "usage": usage.wire(),
                        "status": "completed",
                        "completed_at": now(),
                    },
                )
            assert step is not None
            self._publish_step("thread.run.step.completed", step)
            return True

        required_action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in for_client
                ]
            },
        }
        async with self._changing() as conn:
            await RunStepRepository(conn, self.project_id).update(
                turn.tool_step_id, {"step_details": step_details, "usage": usage.wire()}
            )
            paused = await states.transition(
                conn,
                self.project_id,
                self.run_id,
                expect={"in_progress"},
                to="requires_action",
                required_action=required_action,
                # Nobody works on the run while it waits for the client.
                lease_owner=None,
                lease_expires_at=None,
            )
            if paused is not None:
                logger.info("run waits for tool outputs")
                self.span.set_attribute("assistd.run.status", paused.status)
                self.released = True
                self._emit("thread.run.requires_action", paused)
        return False

    async def _run_call(
        self, run: Run, chat: list[dict[str, Any]], call: _ToolCall
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """One call of the turn, as its step stores it (a function's waits for its output; the server's
        tools run now), and the step delta of its outputs, if it has any."""
        kind = self._kind(call)
        if kind == "function":
            function = {"name": call.name, "arguments": call.arguments, "output": None}
            return {"id": call.id, "type": "function", "function": function}, None
        if kind == file_search.NAME:
            options = file_search.settings(run)
            assert options is not None  # offered only to runs with the tool
            query = file_search.query_of(call.arguments, chat)
            with tracing.tool(kind, call.id) as span:
                results = await file_search.run_search(
                    self.db, self.embeddings, self.project_id, run, query, options
                )
                span.set_attribute("assistd.file_search.results", len(results))
            return file_search.call_details(call.id, query, options, results), None
        sandbox = self.engine.sandbox
        assert sandbox is not None  # a run with code_interpreter fails at its start without one
        with tracing.tool(kind, call.id) as span:
            outcome = await code_interpreter.run_code(
                sandbox,
                self.db,
                self.engine.blobs,
                self.project_id,
                run,
                call.id,
                code_interpreter.code_of(call.arguments),
                max_file_bytes=self.engine.max_file_bytes,
            )
            span.set_attribute("assistd.code_interpreter.outputs", len(outcome.outputs))
        if not outcome.outputs:
            return outcome.details, None
        outputs = [{"index": index} | output for index, output in enumerate(outcome.outputs)]
        return outcome.details, {"index": call.index, "type": kind, kind: {"outputs": outputs}}

    def _emit(
        self, event: str, payload: BaseModel | dict[str, Any], *, detailed: BaseModel | None = None
    ) -> None:
        """Publish an event of the run; within ``_changing``, with that transaction's change."""
        if self._outbox is not None:
            self._outbox.add(event, payload, detailed=detailed)
        else:
            self.bus.publish(self.run_id, event, payload, detailed=detailed)

    @asynccontextmanager
    async def _changing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction that changes the run's status: the events emitted within go out with it
        (``EventBus.writing``), after the events emitted before."""
        async with self.bus.writing(self.db, self.run_id) as (conn, outbox):
            self._outbox = outbox
            try:
                yield conn
            finally:
                self._outbox = None

    def _publish_step(self, event: str, step: RunStep) -> None:
        """A step event: file_search results' text only for streams that asked for it."""
        self._emit(
            event,
            step_view.wire_step(step, include_content=False),
            detailed=step_view.wire_step(step, include_content=True),
        )

    # -- helpers -----------------------------------------------------------------------------------

    def _step_row(self, run: Run, step_id: str, clock: int, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": step_id,
            "created_at": clock,
            "run_id": run.id,
            "thread_id": run.thread_id,
            "assistant_id": run.assistant_id,
            "type": details["type"],
            "status": "in_progress",
            "step_details": details,
            "last_error": None,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "metadata": {},
            "usage": None,
        }


_FUNCTIONS = {file_search.NAME: file_search.FUNCTION, code_interpreter.NAME: code_interpreter.FUNCTION}


def _tool_choice(run: Run, chat: list[dict[str, Any]], *, done: set[str]) -> str | dict[str, Any]:
    """The turn's tool_choice for the model. A forced choice ("required", a named function, a server
    tool) asks for calls before the model answers the user: once this run's calls have their results
    (tool messages come only from the run's own steps), the model is free to answer, or a run could only
    ever loop. ``done``: the server tools the run has used (or may not use any more)."""
    choice = run.tool_choice
    answered = any(message["role"] == "tool" for message in chat)
    if choice is None or isinstance(choice, str):
        return "auto" if choice is None or (answered and choice == "required") else choice
    if choice.type == "function":
        return "auto" if answered else choice.model_dump(exclude_none=True)
    return "auto" if choice.type in done else {"type": "function", "function": {"name": choice.type}}


def _auto_truncation(run: Run) -> bool:
    return run.truncation_strategy is None or run.truncation_strategy.type == "auto"


def _fit(
    chat: list[dict[str, Any]], backend: ChatBackend, limit: int, *, auto: bool
) -> list[dict[str, Any]] | None:
    """The conversation within ``limit`` prompt tokens: with auto truncation the oldest messages go
    first (never the instructions, never the newest message); None when it cannot fit."""
    chat = list(chat)
    system = 1 if chat and chat[0]["role"] == "system" else 0
    while backend.count_tokens(chat) > limit:
        if not auto or len(chat) - system <= 1:
            return None
        del chat[system]
        # A tool result without the call that asked for it means nothing to a model.
        while len(chat) - system > 1 and chat[system]["role"] == "tool":
            del chat[system]
    return chat

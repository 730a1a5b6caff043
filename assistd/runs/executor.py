"""Drives one claimed run: model turns, steps, messages, tool calls, and the events of each.

A turn is one model call. Its text becomes a ``message_creation`` step with an assistant message, its
function calls a ``tool_calls`` step; function calls pause the run in ``requires_action`` until the
client submits their outputs, after which a worker claims the run again and the next turn sees them.
State is written before each event is published. Text is written as it streams, at most every
``FLUSH_SECONDS``, and in full when the message ends, so a crash loses at most that much.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

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
from assistd.runs import file_search, states
from assistd.runs.citations import Citations
from assistd.runs.events import EventBus
from assistd.runs.lifecycle import finish_run
from assistd.runs.prompt import Prompt, build_prompt
from assistd.services.messages import text_part
from assistd.store.database import Database
from assistd.store.queue import Claim
from assistd.store.repositories import MessageRepository, RunStepRepository
from assistd.types import Message, Run, RunStep

logger = logging.getLogger("assistd.runs")

FLUSH_SECONDS = 0.5
# Turns in a row that only searched: after these the model must answer with what it found, so a model
# that keeps searching cannot spin until the run expires.
MAX_SEARCH_TURNS = 4
INTERRUPTED = {
    "code": "server_error",
    "message": "The run was interrupted: the worker executing it stopped. Create a new run to retry.",
}
SHUTDOWN = {
    "code": "server_error",
    "message": "The server shut down while the run was in progress. Create a new run to retry.",
}
INTERNAL = {"code": "server_error", "message": "The server had an error while processing the run."}


@dataclass
class Engine:
    """What executors need from the process: storage, events, models, and embeddings for file_search."""

    database: Database
    bus: EventBus
    models: ModelRouter
    embeddings: EmbeddingBackend


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Turn:
    """What the current model call has produced so far."""

    citations: Citations = field(default_factory=lambda: Citations([]))
    searching: bool = False  # whether the model was offered file_search this turn
    message_step_id: str | None = None
    message_id: str | None = None
    text: str = ""
    flushed_text: str = ""
    flushed_at: float = 0.0
    tool_step_id: str | None = None
    calls: dict[int, _ToolCall] = field(default_factory=dict)


class RunExecutor:
    def __init__(self, engine: Engine, claim: Claim, started: Run | None = None) -> None:
        """``started``: for a claim of a queued run, the run as the claim moved it to in_progress
        (None if it could not be: it was cancelled or expired meanwhile)."""
        self.db = engine.database
        self.bus = engine.bus
        self.models = engine.models
        self.embeddings = engine.embeddings
        self.claim = claim
        self.started = started
        self.project_id = claim.project_id
        self.run_id = claim.run_id
        self.cancel_reason: str | None = None  # set by the worker before it cancels the task
        # Whether this executor's last transition let go of the run's lease (ended it, or paused it for
        # tool outputs). If not, the worker hands the lease back itself.
        self.released = False
        self.turn = _Turn()

    # -- entry -------------------------------------------------------------------------------------

    async def execute(self) -> None:
        if self.claim.status == "cancelling":
            await self._finish("cancelled", expect={"cancelling"})
            return
        if self.claim.status == "in_progress":
            # Claimed because the lease of the worker that ran it lapsed: that worker is gone.
            await self._finish("failed", expect={"in_progress"}, last_error=INTERRUPTED)
            return
        run = self.started
        if run is None:
            return  # cancelled or expired meanwhile: the worker or the sweeper sees to it
        self.bus.publish(self.run_id, "thread.run.in_progress", run)
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
                await self._finish("failed", expect={"in_progress", "cancelling"}, last_error=SHUTDOWN)
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

    # -- a turn ------------------------------------------------------------------------------------

    async def _drive(self, run: Run) -> None:
        try:
            target = self.models.resolve(run.model)
        except ModelNotFound as missing:
            raise BackendError(f"The model '{missing.name}' does not exist.", "invalid_prompt") from None
        search_turns = 0
        while True:
            async with self.db.read() as conn:
                prompt = await build_prompt(conn, run, self.project_id)
            offer_search = search_turns < MAX_SEARCH_TURNS
            if not await self._turn_goes_on(run, target, prompt, offer_search=offer_search):
                return
            search_turns += 1

    async def _turn_goes_on(self, run: Run, target: Target, prompt: Prompt, *, offer_search: bool) -> bool:
        """One model call and what follows from it; whether the run needs another turn (the model
        searched, and reads the results next)."""
        used = prompt.earlier_usage
        searching = offer_search and file_search.settings(run) is not None
        request = self._request(run, prompt, target, searching=searching)
        if isinstance(request, str):
            async with self.db.write() as conn:
                ended = await self._end(conn, used, incomplete=request)
            self._publish_end(ended)
            return False

        self.turn = _Turn(citations=Citations(prompt.searches), searching=searching)
        finish: Finish | None = None
        async for chunk in target.backend.stream(request):
            if isinstance(chunk, TextDelta):
                await self._on_text(run, chunk.text)
            elif isinstance(chunk, ToolCallDelta):
                await self._on_tool_call(run, chunk)
            else:
                finish = chunk
        if finish is None:
            raise BackendError("The model's answer ended before it was complete.")

        if self.turn.calls:
            return await self._run_tool_calls(run, request.messages, finish.usage)
        total = Usage(
            used.prompt_tokens + finish.usage.prompt_tokens,
            used.completion_tokens + finish.usage.completion_tokens,
        )
        budget_hit = finish.reason == "length" and run.max_completion_tokens is not None
        if self.turn.message_id is None:
            await self._open_message(run)  # the model said nothing: still one (empty) message
        # The last message and the run end in one transaction: one round of waiting for the writer.
        async with self.db.write() as conn:
            closed = await self._close_message(conn, finish.usage, incomplete=budget_hit)
            ended = await self._end(conn, total, incomplete="max_completion_tokens" if budget_hit else None)
        self._publish_closed(*closed)
        self._publish_end(ended)
        return False

    def _request(self, run: Run, prompt: Prompt, target: Target, *, searching: bool) -> ChatRequest | str:
        """This turn's model call, or the reason the run ends incomplete before it."""
        chat, used = prompt.messages, prompt.earlier_usage
        tools = [tool.model_dump(exclude_none=True) for tool in run.tools if tool.type == "function"]
        if searching:
            tools.append(file_search.FUNCTION)
        tool_choice = _tool_choice(run, chat, searched=bool(prompt.searches) or not searching)
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
            self.released = True
            self.bus.publish(self.run_id, states.event_name(run), run)

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
        self.bus.publish(run.id, "thread.run.step.created", step)
        self.bus.publish(run.id, "thread.run.step.in_progress", step)
        self.bus.publish(run.id, "thread.message.created", message)
        self.bus.publish(run.id, "thread.message.in_progress", message)

    async def _on_text(self, run: Run, piece: str) -> None:
        if self.turn.message_id is None:
            await self._open_message(run)
        turn = self.turn
        turn.text += piece
        annotations = turn.citations.deltas(turn.citations.scan(turn.text))
        self.bus.publish(
            run.id,
            "thread.message.delta",
            {
                "id": turn.message_id,
                "object": "thread.message.delta",
                "delta": {
                    "content": [
                        {"index": 0, "type": "text", "text": {"value": piece, "annotations": annotations}}
                    ]
                },
            },
        )
        if time.monotonic() - self.turn.flushed_at >= FLUSH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        """Write the text streamed so far to the open message."""
        turn = self.turn
        if turn.message_id is None or turn.text == turn.flushed_text:
            return
        async with self.db.write() as conn:
            await MessageRepository(conn, self.project_id).update(
                turn.message_id, {"content": [text_part(turn.text, turn.citations.annotations)]}
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
        message_fields: dict[str, Any] = {"content": [text_part(turn.text, turn.citations.annotations)]}
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
        turn.flushed_text = turn.text
        turn.message_id = turn.message_step_id = None
        return message, step

    def _publish_closed(self, message: Message, step: RunStep) -> None:
        self.bus.publish(self.run_id, f"thread.message.{message.status}", message)
        self.bus.publish(self.run_id, "thread.run.step.completed", step)

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
            self.bus.publish(run.id, "thread.run.step.created", step)
            self.bus.publish(run.id, "thread.run.step.in_progress", step)

        call = turn.calls.setdefault(delta.index, _ToolCall())
        fragment: dict[str, Any] = {"index": delta.index}
        call.arguments += delta.arguments
        if delta.id and not call.id:
            call.id, call.name = delta.id, delta.name or ""
            if self._searches(call):
                # Clients see a search start; its query is the model's own, its results come with the
                # completed step.
                fragment |= {"type": file_search.NAME, "id": call.id, file_search.NAME: {}}
            else:
                fragment |= {
                    "type": "function",
                    "id": call.id,
                    "function": {"name": call.name, "arguments": delta.arguments, "output": None},
                }
        elif self._searches(call):
            return
        else:
            fragment |= {"type": "function", "function": {"arguments": delta.arguments}}
        self.bus.publish(
            run.id,
            "thread.run.step.delta",
            {
                "id": turn.tool_step_id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [fragment]}},
            },
        )

    def _searches(self, call: _ToolCall) -> bool:
        """Whether the call is to the run's own file_search tool (the server runs it, not the client)."""
        return self.turn.searching and call.name == file_search.NAME

    async def _run_tool_calls(self, run: Run, chat: list[dict[str, Any]], usage: Usage) -> bool:
        """Run the turn's searches (``chat``: what the model was given); then either wait for the
        client's function outputs (False), or go on to the next turn, which reads the results (True)."""
        turn = self.turn
        assert turn.tool_step_id is not None
        functions = {tool.function.name for tool in run.tools if tool.type == "function"}
        calls = [turn.calls[index] for index in sorted(turn.calls)]
        for_client = [call for call in calls if not self._searches(call)]
        unknown = [call.name for call in for_client if call.name not in functions]
        if unknown:
            raise BackendError(f"The model called {unknown[0]!r}, which is not a function of this run.")
        options = file_search.settings(run)
        details: list[dict[str, Any]] = []
        for call in calls:
            if call in for_client:
                details.append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments, "output": None},
                    }
                )
                continue
            assert options is not None
            query = file_search.query_of(call.arguments, chat)
            results = await file_search.run_search(
                self.db, self.embeddings, self.project_id, run, query, options
            )
            details.append(file_search.call_details(call.id, query, options, results))
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
        async with self.db.write() as conn:
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
            self.released = True
            self.bus.publish(self.run_id, "thread.run.requires_action", paused)
        return False

    def _publish_step(self, event: str, step: RunStep) -> None:
        """A step event: file_search results' text only for streams that asked for it."""
        self.bus.publish(
            self.run_id,
            event,
            file_search.wire_step(step, include_content=False),
            detailed=file_search.wire_step(step, include_content=True),
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


def _tool_choice(run: Run, chat: list[dict[str, Any]], *, searched: bool) -> str | dict[str, Any]:
    """The turn's tool_choice for the model. A forced choice ("required", a named function, file_search)
    asks for calls before the model answers the user: once this run's calls have their results (tool
    messages come only from the run's own steps), the model is free to answer, or a run could only ever
    loop. ``searched``: whether the run has searched already (or cannot search any more)."""
    choice = run.tool_choice
    answered = any(message["role"] == "tool" for message in chat)
    if choice is None or isinstance(choice, str):
        return "auto" if choice is None or (answered and choice == "required") else choice
    if choice.type == "file_search":
        return "auto" if searched else {"type": "function", "function": {"name": file_search.NAME}}
    if choice.type == "function":
        return "auto" if answered else choice.model_dump(exclude_none=True)
    raise BackendError(f"The {choice.type} tool is not available on this server yet.")


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

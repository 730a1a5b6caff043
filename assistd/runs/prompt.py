"""What the model sees: the run's instructions, the thread so far, and the run's own earlier steps,
in the Chat Completions message format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.backends.base import Usage
from assistd.runs import code_interpreter, file_search, step_view
from assistd.store import tables
from assistd.store.statements import once
from assistd.types import Run

messages = tables.messages
steps = tables.run_steps


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Thread message content as chat content: a string when it is all text."""
    texts = [part["text"]["value"] for part in parts if part["type"] == "text"]
    images = [part for part in parts if part["type"] == "image_url"]
    if not images:
        return "\n".join(texts)
    chat: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts]
    chat += [{"type": "image_url", "image_url": part["image_url"]} for part in images]
    return chat


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: list[dict[str, Any]]
    earlier_usage: Usage  # the tokens of the run's earlier turns (tool calls, messages) so far
    searches: list[dict[str, Any]]  # the run's file_search calls so far, in order (as steps store them)
    code_calls: list[dict[str, Any]]  # its code_interpreter calls so far, in order
    shown_images: set[str]  # the image files its messages already show


def _history_of_thread() -> Select[Any]:
    """The thread's messages but for the run's own (the parameters of build_prompt's ``bound``)."""
    return select(messages.c.role, messages.c.content).where(
        messages.c.project_id == bindparam("in_project"),
        messages.c.thread_id == bindparam("thread"),
        or_(messages.c.run_id.is_(None), messages.c.run_id != bindparam("run")),
    )


def _history() -> Select[Any]:
    return _history_of_thread().order_by(messages.c.created_at, messages.c.seq)


def _newest_history() -> Select[Any]:
    """The newest ``newest`` messages, newest first."""
    return (
        _history_of_thread()
        .order_by(messages.c.created_at.desc(), messages.c.seq.desc())
        .limit(bindparam("newest"))
    )


def _own_steps() -> Select[Any]:
    return (
        select(steps.c.step_details, steps.c.status, steps.c.usage)
        .where(steps.c.project_id == bindparam("in_project"), steps.c.run_id == bindparam("run"))
        .order_by(steps.c.created_at, steps.c.seq)
    )


async def build_prompt(conn: AsyncConnection, run: Run, project_id: str) -> Prompt:
    chat: list[dict[str, Any]] = []
    if run.instructions:
        chat.append({"role": "system", "content": run.instructions})

    bound: dict[str, Any] = {"in_project": project_id, "thread": run.thread_id, "run": run.id}
    truncation = run.truncation_strategy
    if truncation is not None and truncation.type == "last_messages" and truncation.last_messages:
        newest = once("prompt history, newest", _newest_history)
        bound["newest"] = truncation.last_messages
        rows = list(await conn.execute(newest, bound))[::-1]
    else:
        rows = list(await conn.execute(once("prompt history", _history), bound))
    chat += [{"role": row.role, "content": _content(row.content)} for row in rows]

    # The run's own steps, in one query: what they said and did, and what they cost.
    step_rows = list(await conn.execute(once("prompt steps", _own_steps), bound))
    completed = [row.step_details for row in step_rows if row.status == "completed"]
    own, shown_images = await _own_turns(conn, completed)
    chat += own
    usages = [row.usage for row in step_rows if row.usage]
    earlier = Usage(
        sum(usage["prompt_tokens"] for usage in usages),
        sum(usage["completion_tokens"] for usage in usages),
    )
    return Prompt(
        chat,
        earlier,
        searches=step_view.calls_of(completed, file_search.NAME),
        code_calls=step_view.calls_of(completed, code_interpreter.NAME),
        shown_images=shown_images,
    )


async def _own_turns(
    conn: AsyncConnection, details: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The run's earlier turns, from its completed steps: its messages and its tool calls (functions,
    file searches, code) with their outputs; and the image files its messages show."""
    message_ids = [d["message_creation"]["message_id"] for d in details if d["type"] == "message_creation"]
    texts: dict[str, Any] = {}
    shown_images: set[str] = set()
    if message_ids:
        found = await conn.execute(
            select(messages.c.id, messages.c.content).where(messages.c.id.in_(message_ids))
        )
        for row in found:
            texts[row.id] = _content(row.content)
            shown_images |= {p["image_file"]["file_id"] for p in row.content if p["type"] == "image_file"}

    chat: list[dict[str, Any]] = []
    search_number = 0  # file_search calls are numbered across the run, as their markers are
    for detail in details:
        if detail["type"] == "message_creation":
            chat.append(
                {"role": "assistant", "content": texts.get(detail["message_creation"]["message_id"], "")}
            )
            continue
        calls = [
            call for call in detail["tool_calls"] if call["type"] in ("function", *step_view.SERVER_TOOLS)
        ]
        if not calls:
            continue
        requests: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        for call in calls:
            if call["type"] == "function":
                function = call["function"]
                name, arguments, output = function["name"], function["arguments"], function["output"] or ""
            elif call["type"] == code_interpreter.NAME:
                name = code_interpreter.NAME
                ran = call[code_interpreter.NAME]
                arguments = json.dumps({"code": ran["input"]}, ensure_ascii=False)
                output = code_interpreter.model_output(ran)
            else:
                found = call[file_search.NAME]
                name = file_search.NAME
                arguments = json.dumps({"query": found.get(file_search.QUERY_KEY, "")}, ensure_ascii=False)
                output = file_search.model_output(search_number, found.get("results") or [])
                search_number += 1
            requests.append(
                {"id": call["id"], "type": "function", "function": {"name": name, "arguments": arguments}}
            )
            outputs.append({"role": "tool", "tool_call_id": call["id"], "content": output})
        chat.append({"role": "assistant", "content": None, "tool_calls": requests})
        chat += outputs
    return chat, shown_images

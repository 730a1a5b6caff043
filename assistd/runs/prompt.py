"""What the model sees: the run's instructions, the thread so far, and the run's own earlier steps,
in the Chat Completions message format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.backends.base import Usage
from assistd.runs import file_search
from assistd.store import tables
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
    earlier_usage: Usage  # the tokens of the run's earlier turns (before tool outputs were submitted)
    searches: list[dict[str, Any]]  # the run's file_search calls so far, in order (as steps store them)


async def build_prompt(conn: AsyncConnection, run: Run, project_id: str) -> Prompt:
    chat: list[dict[str, Any]] = []
    if run.instructions:
        chat.append({"role": "system", "content": run.instructions})

    history = select(messages.c.role, messages.c.content).where(
        messages.c.project_id == project_id,
        messages.c.thread_id == run.thread_id,
        or_(messages.c.run_id.is_(None), messages.c.run_id != run.id),
    )
    truncation = run.truncation_strategy
    if truncation is not None and truncation.type == "last_messages" and truncation.last_messages:
        newest = history.order_by(messages.c.created_at.desc(), messages.c.seq.desc())
        rows = list(await conn.execute(newest.limit(truncation.last_messages)))[::-1]
    else:
        rows = list(await conn.execute(history.order_by(messages.c.created_at, messages.c.seq)))
    chat += [{"role": row.role, "content": _content(row.content)} for row in rows]

    # The run's own steps, in one query: what they said and did, and what they cost.
    step_rows = list(
        await conn.execute(
            select(steps.c.step_details, steps.c.status, steps.c.usage)
            .where(steps.c.project_id == project_id, steps.c.run_id == run.id)
            .order_by(steps.c.created_at, steps.c.seq)
        )
    )
    completed = [row.step_details for row in step_rows if row.status == "completed"]
    chat += await _own_turns(conn, completed)
    usages = [row.usage for row in step_rows if row.usage]
    earlier = Usage(
        sum(usage["prompt_tokens"] for usage in usages),
        sum(usage["completion_tokens"] for usage in usages),
    )
    return Prompt(chat, earlier, file_search.searches(completed))


async def _own_turns(conn: AsyncConnection, details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's earlier turns, from its completed steps: its messages and its tool calls (functions
    and file searches) with their outputs."""
    message_ids = [d["message_creation"]["message_id"] for d in details if d["type"] == "message_creation"]
    texts: dict[str, Any] = {}
    if message_ids:
        found = await conn.execute(
            select(messages.c.id, messages.c.content).where(messages.c.id.in_(message_ids))
        )
        texts = {row.id: _content(row.content) for row in found}

    chat: list[dict[str, Any]] = []
    search_number = 0  # file_search calls are numbered across the run, as their markers are
    for detail in details:
        if detail["type"] == "message_creation":
            chat.append(
                {"role": "assistant", "content": texts.get(detail["message_creation"]["message_id"], "")}
            )
            continue
        calls = [call for call in detail["tool_calls"] if call["type"] in ("function", file_search.NAME)]
        if not calls:
            continue
        requests: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        for call in calls:
            if call["type"] == "function":
                function = call["function"]
                name, arguments, output = function["name"], function["arguments"], function["output"] or ""
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
    return chat

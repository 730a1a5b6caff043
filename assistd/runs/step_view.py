"""Run steps as clients see them, and the run's server-side tool calls as later turns read them.

A stored step keeps, beside the wire fields, what later turns need and the wire does not show: a
file_search call's query and its results' text (shown only with ``include[]``), and the files a
code_interpreter call wrote (for ``file_path`` annotations). ``wire_step`` is the one place that
trims them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistd.runs import code_interpreter, file_search
from assistd.types import RunStep

SERVER_TOOLS = (file_search.NAME, code_interpreter.NAME)


def wire_step(step: RunStep, *, include_content: bool) -> RunStep:
    """The step as clients see it; ``include_content``: file_search results keep their text."""
    details = step.step_details
    if details.type != "tool_calls" or not any(call.type in SERVER_TOOLS for call in details.tool_calls):
        return step
    dumped = step.model_dump(exclude_unset=True)
    for call in dumped["step_details"]["tool_calls"]:
        if call["type"] == file_search.NAME:
            call[file_search.NAME].pop(file_search.QUERY_KEY, None)
            if not include_content:
                for result in call[file_search.NAME].get("results") or []:
                    result.pop("content", None)
        elif call["type"] == code_interpreter.NAME:
            call[code_interpreter.NAME].pop(code_interpreter.FILES_KEY, None)
    return RunStep.model_validate(dumped)


def calls_of(step_details: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The tool calls of type ``kind`` in stored steps' details, in order."""
    return [
        call
        for details in step_details
        if details.get("type") == "tool_calls"
        for call in details["tool_calls"]
        if call["type"] == kind
    ]

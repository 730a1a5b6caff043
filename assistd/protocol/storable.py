"""What no database can store faithfully, found before anything is stored.

PostgreSQL refuses NUL characters in text and JSON; a lone UTF-16 surrogate (``"\\ud800"`` in JSON)
is not valid Unicode and cannot be written back out as UTF-8; NaN and the infinities (which Python's
JSON parser accepts as ``NaN``/``Infinity``, or gives for a number past a double's range such as
``1e400``) are no JSON numbers at all, and would come back as null; JSON nested deeper than any real
schema overflows serialisers. Each is refused with the path of the offending value.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 64


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "NUL characters (\\u0000) are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Strings must be valid Unicode: lone surrogate escapes (e.g. \\ud800) are not allowed."
    return None


def find_unstorable(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """``(path, problem)`` for the first value that cannot be stored, e.g. ``("messages[0].content",
    "NUL characters ...")``; None when everything can."""
    if isinstance(value, str):
        problem = string_problem(value)
        return None if problem is None else (path, problem)
    if isinstance(value, float) and not math.isfinite(value):
        return path, "Numbers must be finite: NaN, Infinity and numbers past 1.8e308 are not JSON numbers."
    if depth > MAX_DEPTH and isinstance(value, dict | list):
        return path, f"JSON nested more than {MAX_DEPTH} levels deep is not accepted."
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problem = string_problem(key) if isinstance(key, str) else None
            if problem is not None:
                return (path or "body"), problem
            found = find_unstorable(item, child, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
    return None

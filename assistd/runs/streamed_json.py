"""One string field of a JSON object, decoded while the object's text is still streaming in.

A model sends a tool call's arguments as JSON text in fragments. Clients of a code_interpreter call
see its ``input`` (the code) grow as the model writes it, so the field's value is decoded from the
fragments received so far: up to the last complete character, never past an escape sequence that has
not fully arrived.
"""

from __future__ import annotations

import json
import re

_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}$")


def partial_string(text: str, key: str) -> str:
    """The decoded value of the string field ``key`` of the JSON object whose text begins ``text``; as
    much of it as ``text`` holds ("" if the field has not started)."""
    start = re.search(rf'"{re.escape(key)}"\s*:\s*"', text)
    if start is None:
        return ""
    position, end = start.end(), len(text)
    while position < end and text[position] != '"':
        if text[position] == "\\":
            length = 6 if text[position + 1 : position + 2] == "u" else 2
            if position + length > end:
                break  # an escape sequence still arriving
            position += length
        else:
            position += 1
    raw = text[start.end() : position]
    if _HIGH_SURROGATE.search(raw):
        raw = raw[:-6]  # half of a surrogate pair waits for its other half
    try:
        value: str = json.loads('"' + raw + '"')
    except json.JSONDecodeError:
        return ""  # not JSON a model should send: show nothing rather than garbage
    return value


class StreamedField:
    """Feeds the arguments text as it grows; returns what is new of the field's value each time."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.value = ""

    def feed(self, arguments: str) -> str:
        decoded = partial_string(arguments, self.key)
        if not decoded.startswith(self.value):
            return ""  # cannot happen with growing text; never send a correction
        new, self.value = decoded[len(self.value) :], decoded
        return new

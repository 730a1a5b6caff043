"""One string field of a JSON object, decoded while the object's text is still streaming in.

A model sends a tool call's arguments as JSON text in fragments. Clients of a code_interpreter call
see its ``input`` (the code) grow as the model writes it, so the field's value is decoded from the
fragments received so far: up to the last complete character, never into an escape sequence, or half
of a surrogate pair, that has not fully arrived. Each fragment is read once, so a long field costs
time in proportion to its length.
"""

from __future__ import annotations

import json
import re

_HIGH_SURROGATE = re.compile(r"u[dD][89abAB][0-9a-fA-F]{2}")


class StreamedField:
    """Feed it the arguments text as it grows; it returns what is new of the field's value each time."""

    def __init__(self, key: str) -> None:
        self._opening = re.compile(rf'"{re.escape(key)}"\s*:\s*"')
        self._start: int | None = None  # where the value's raw text begins, once seen
        self._read = 0  # the raw text before this offset is decoded
        self._closed = False
        self.value = ""

    def feed(self, arguments: str) -> str:
        if self._start is None:
            found = self._opening.search(arguments)
            if found is None:
                return ""
            self._start = self._read = found.end()
        if self._closed:
            return ""
        end = self._complete_prefix(arguments)
        if end == self._read:
            return ""
        try:
            new: str = json.loads('"' + arguments[self._read : end] + '"')
        except json.JSONDecodeError:
            self._closed = True  # not JSON a model should send: show nothing rather than garbage
            return ""
        self._read = end
        self.value += new
        return new

    def _complete_prefix(self, text: str) -> int:
        """The end of the raw value text from ``_read`` that decodes on its own."""
        position, end = self._read, len(text)
        while position < end:
            char = text[position]
            if char == '"':
                self._closed = True
                break
            if char != "\\":
                position += 1
                continue
            if position + 1 >= end:
                break
            if text[position + 1] != "u":
                position += 2
                continue
            if position + 6 > end:
                break
            if _HIGH_SURROGATE.fullmatch(text, position + 1, position + 6):
                # Half of a surrogate pair decodes only with its other half.
                if position + 12 > end:
                    break
                position += 12
            else:
                position += 6
        return position


def partial_string(text: str, key: str) -> str:
    """The decoded value of the string field ``key`` of the JSON object whose text begins ``text``; as
    much of it as ``text`` holds ("" if the field has not started)."""
    field = StreamedField(key)
    field.feed(text)
    return field.value

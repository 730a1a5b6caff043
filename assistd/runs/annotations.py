"""Annotations of an answer: citation markers become ``file_citation``, sandbox links ``file_path``.

The model cites a file_search result by copying its marker, ``【N:I†filename】`` (see
``runs.file_search``), and gives the user a file that code_interpreter wrote by linking to it as
``sandbox:/mnt/data/NAME`` (see ``runs.code_interpreter``). Each marker that names a result of this run,
and each link to a file this run wrote, becomes an annotation whose ``text`` is the marker or the link
and whose ``start_index``/``end_index`` point at it in the message text, so that user code can rewrite
them as it did with OpenAI's. A marker or link that names nothing of this run stays plain text.

Text streams in pieces, and a marker or link can span several of them: ``Annotations.scan`` is fed the
text so far and returns the annotations completed since its last call, each once, so that a stream
sends every annotation in exactly one delta (the SDK adds up numbers it sees twice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from assistd.runs import file_search

MARKER = re.compile(r"【(\d+):(\d+)†([^】\n]*)】")
_MARKER_OPEN = "【"
LINK = re.compile(r"sandbox:(/mnt/data/[^\s()\[\]<>\"'`]+)")
_LINK_PREFIX = "sandbox:/mnt/data/"
_LINK_TRAILING = ".,;:!?"  # the end of the sentence around a link, not part of it


class Annotations:
    def __init__(self, searches: Sequence[dict[str, Any]], written: dict[str, str]) -> None:
        """``searches``: the run's file_search calls, in order; ``written``: the file ids of the files
        its code wrote, by sandbox path."""
        self._searches, self._written = searches, written
        self._cited: dict[tuple[int, int], str] = {}
        for number, call in enumerate(searches):
            for result_number, result in enumerate(call[file_search.NAME].get("results") or []):
                self._cited[(number, result_number)] = result["file_id"]
        # The text before these offsets holds no unfinished marker or link.
        self._markers_scanned = 0
        self._links_scanned = 0
        self.annotations: list[dict[str, Any]] = []

    def fresh(self) -> Annotations:
        """Annotations for another message of the same run."""
        return Annotations(self._searches, self._written)

    def scan(self, text: str, *, final: bool = False) -> list[dict[str, Any]]:
        """The annotations completed in ``text`` since the last call (``text`` only grows); ``final``:
        the text is complete, so a link at its very end is complete too."""
        found = self._markers(text) if self._cited else []
        if self._written:
            found += self._links(text, final)
        self.annotations += found
        return found

    def deltas(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``found`` (just returned by ``scan``) as delta elements: each carries its position in the
        text part's annotations."""
        first = len(self.annotations) - len(found)
        return [{"index": first + offset} | annotation for offset, annotation in enumerate(found)]

    def _markers(self, text: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for match in MARKER.finditer(text, self._markers_scanned):
            self._markers_scanned = match.end()
            file_id = self._cited.get((int(match.group(1)), int(match.group(2))))
            if file_id is not None:
                found.append(_annotation("file_citation", text, match.start(), match.end(), file_id))
        # A marker still being written starts at the last opening bracket: scan from there next time.
        opening = text.rfind(_MARKER_OPEN, self._markers_scanned)
        self._markers_scanned = opening if opening >= 0 else len(text)
        return found

    def _links(self, text: str, final: bool) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for match in LINK.finditer(text, self._links_scanned):
            if match.end() == len(text) and not final:
                self._links_scanned = match.start()  # the path may go on in the next piece
                return found
            path = match.group(1).rstrip(_LINK_TRAILING)
            end = match.start() + len("sandbox:") + len(path)
            self._links_scanned = match.end()
            file_id = self._written.get(path)
            if file_id is not None:
                found.append(_annotation("file_path", text, match.start(), end, file_id))
        # A link whose prefix is still being written starts in the last few characters.
        self._links_scanned = max(self._links_scanned, len(text) - len(_LINK_PREFIX))
        return found


def _annotation(kind: str, text: str, start: int, end: int, file_id: str) -> dict[str, Any]:
    return {
        "type": kind,
        "text": text[start:end],
        "start_index": start,
        "end_index": end,
        kind: {"file_id": file_id},
    }

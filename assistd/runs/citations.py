"""Citation markers in a model's answer, as ``file_citation`` annotations.

The model cites a file_search result by copying its marker, ``【N:I†filename】`` (see
``runs.file_search``). Each marker that names a result of this run becomes an annotation whose
``text`` is the marker and whose ``start_index``/``end_index`` point at it in the message text, so
that user code can strip or rewrite markers as it did with OpenAI's. A marker that names no result
(a model can make one up) stays plain text.

Text streams in pieces and a marker can span several of them: ``Citations.scan`` is fed the text so
far and returns the annotations of the markers completed since its last call, each once, so a stream
sends every annotation in exactly one delta (the SDK adds up numbers it sees twice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from assistd.runs.file_search import NAME

MARKER = re.compile(r"【(\d+):(\d+)†([^】\n]*)】")
_OPEN = "【"


class Citations:
    def __init__(self, searches: Sequence[dict[str, Any]]) -> None:
        """``searches``: the run's file_search calls, in order (``file_search.searches``)."""
        self._files: dict[tuple[int, int], str] = {}
        for number, call in enumerate(searches):
            for result_number, result in enumerate(call[NAME].get("results") or []):
                self._files[(number, result_number)] = result["file_id"]
        self._scanned = 0  # the text before this offset holds no unfinished marker
        self.annotations: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._files)

    def scan(self, text: str) -> list[dict[str, Any]]:
        """The annotations of markers completed in ``text`` since the last call (``text`` only grows)."""
        if not self._files:
            return []
        found: list[dict[str, Any]] = []
        for match in MARKER.finditer(text, self._scanned):
            file_id = self._files.get((int(match.group(1)), int(match.group(2))))
            self._scanned = match.end()
            if file_id is None:
                continue
            annotation = {
                "type": "file_citation",
                "text": match.group(0),
                "start_index": match.start(),
                "end_index": match.end(),
                "file_citation": {"file_id": file_id},
            }
            found.append(annotation)
        # A marker still being written starts at the last opening bracket: scan from there next time.
        opening = text.rfind(_OPEN, self._scanned)
        self._scanned = opening if opening >= 0 else len(text)
        self.annotations += found
        return found

    def deltas(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``found`` (just returned by ``scan``) as delta elements: each carries its position in the
        text part's annotations."""
        first = len(self.annotations) - len(found)
        return [{"index": first + offset} | annotation for offset, annotation in enumerate(found)]

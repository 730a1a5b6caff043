"""Cutting a file's text into chunks by tokens, the way OpenAI's file_search does.

OpenAI's ``static`` chunking strategy cuts the text into windows of at most ``max_chunk_size_tokens``
tokens, each window starting ``chunk_overlap_tokens`` before the previous one ended (defaults 800 and
400). :func:`chunk_text` does the same with ``o200k_base`` token counts, with two refinements:

* a window ends at a paragraph break, a sentence end or a space when one lies in its last tenth
  (:data:`BOUNDARY_SLACK`), rather than inside a word; text without spaces (Chinese, Japanese, long
  identifiers) is cut at a token boundary;
* a chunk never starts or ends with whitespace, and never splits a character: every chunk is
  ``text[start:end]`` of the text it came from, so its offsets can point back into the file.

Every chunk's ``tokens`` is its own exact count (the text counted alone), and is at most
``max_tokens``. The one exception is a ``max_tokens`` below 4, where a single character can need more
tokens than allowed (a UTF-8 character is up to 4 byte tokens): such a character is then a chunk alone.

Tokens are counted with ``toktok`` (PyPI: ``toktok-rs``; see :mod:`assistd.backends.tokens`), through
its public ``truncate``: the longest prefix of a text within a token budget, cut on a token boundary and
never inside a character, and the count of the whole text. (toktok can also encode to ids with offsets,
but only through a private API.) Each call sees one window's text, so chunking is linear in the text's
length. Without ``toktok`` installed, tokens are estimated as 4 bytes of UTF-8 each, as in
:mod:`assistd.backends.tokens`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("assistd.retrieval")

ENCODING = "o200k_base"
BOUNDARY_SLACK = 0.1  # a window may give up this share of its characters to end at a boundary
INITIAL_CHARS_PER_TOKEN = 6.0  # the first window's guess; later windows use the text's own ratio
BYTES_PER_TOKEN = 4  # the estimate without toktok


@dataclass(frozen=True)
class Chunk:
    """One chunk: ``text == source[start:end]`` of the text it was cut from, and its token count."""

    index: int
    text: str
    start: int
    end: int
    tokens: int


class _Tokens(Protocol):
    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> tuple[str, int]:
        """The longest prefix of ``text`` within ``max_tokens`` tokens, and the tokens of all ``text``."""
        ...


class _Truncate(Protocol):
    def __call__(self, text: str, max_tokens: int, encoding: str = ...) -> tuple[str, int]: ...


class _Toktok:
    def __init__(self, truncate: _Truncate) -> None:
        self._truncate = truncate

    def count(self, text: str) -> int:
        # truncate's total is the count, at a seventh of batch_count's cost for one text (it skips the
        # batch's setup); like batch_count(with_special=False) it counts special-token strings as text.
        return self._truncate(text, 0, ENCODING)[1]

    def truncate(self, text: str, max_tokens: int) -> tuple[str, int]:
        return self._truncate(text, max_tokens, ENCODING)


class _Estimate:
    """``BYTES_PER_TOKEN`` bytes of UTF-8 a token, rounded up."""

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)

    def truncate(self, text: str, max_tokens: int) -> tuple[str, int]:
        data = text.encode()
        total = math.ceil(len(data) / BYTES_PER_TOKEN)
        if total <= max_tokens:
            return text, total
        # "ignore" drops the partial character the byte cut may leave at the end.
        return data[: max_tokens * BYTES_PER_TOKEN].decode(errors="ignore"), total


@functools.cache
def _tokens() -> _Tokens:
    """toktok's counter, or the estimate when it is not installed. Imported by name, as in
    :mod:`assistd.backends.tokens`, since toktok ships no type hints."""
    try:
        module = importlib.import_module("toktok")
    except ImportError:
        logger.warning(
            "toktok-rs is not installed: chunks are cut by an estimate of %d bytes a token", BYTES_PER_TOKEN
        )
        return _Estimate()
    return _Toktok(module.truncate)


# A window may end right after a non-space character that is followed by a blank line (a paragraph
# break), a line break, or other whitespace; or after a CJK full stop, which needs no space after it.
_BREAK = re.compile(
    r"(?<=\S)(?:(?P<paragraph>[^\S\n]*\n[^\S\n]*\n)|(?P<line>[^\S\n]*\n)|(?P<space>\s))"
    r"|(?<=[\u3002\uff01\uff1f])(?=\S)"  # the CJK (ideographic or fullwidth) full stop, ! and ?
)
_NON_SPACE = re.compile(r"\S")
_SENTENCE_END = frozenset(".!?\u2026\u3002\uff01\uff1f")  # and the ellipsis, and CJK . ! ?
# Closing quotes and brackets (also curly, guillemet and CJK ones) may stand between a sentence's end and
# the space after it.
_CLOSERS = frozenset("\"')]}\u201d\u2019\u00bb\u300d\u300f\uff09")
_PARAGRAPH, _SENTENCE, _SPACE = 3, 2, 1


def chunk_text(text: str, *, max_tokens: int = 800, overlap_tokens: int = 400) -> list[Chunk]:
    """Cuts ``text`` into overlapping chunks of at most ``max_tokens`` tokens (see the module).

    ``overlap_tokens`` must be at most half of ``max_tokens`` (the API validates this before).
    Text that is empty or only whitespace has no chunks.
    """
    assert max_tokens >= 1, max_tokens
    assert 0 <= overlap_tokens <= max_tokens // 2, (max_tokens, overlap_tokens)
    tokens = _tokens()
    stop = len(text.rstrip())
    start = _skip_space(text, 0, stop)
    chunks: list[Chunk] = []
    chars_per_token = INITIAL_CHARS_PER_TOKEN
    while start < stop:
        end, last = _window_end(text, start, stop, max_tokens, chars_per_token, tokens)
        piece = text[start:end]
        count = tokens.count(piece)
        while count > max_tokens and end - start > 1:
            # The window's own count can exceed the budget it was cut by (BPE merges differ at its edges).
            end = start + max(1, len(tokens.truncate(piece, max_tokens - (count - max_tokens))[0]))
            end = _trim_end(text, start, end)
            piece = text[start:end]
            count = tokens.count(piece)
        chunks.append(Chunk(index=len(chunks), text=piece, start=start, end=end, tokens=count))
        if last or end >= stop:
            break
        chars_per_token = max(0.25, (end - start) / max(1, count))  # a character is at most 4 tokens
        start = _skip_space(text, _next_start(piece, start, end, count, overlap_tokens, tokens), stop)
    return chunks


def _window_end(
    text: str, start: int, stop: int, max_tokens: int, chars_per_token: float, tokens: _Tokens
) -> tuple[int, bool]:
    """The end of the window that starts at ``start``, and whether it is the last one.

    Tokenizes a slice of the text a little longer than ``max_tokens`` tokens are likely to be (growing it
    while the whole slice fits), cuts it at ``max_tokens`` tokens, then moves the cut back to a boundary.
    """
    span = int(chars_per_token * max_tokens * 1.15) + 16
    while True:
        limit = min(stop, start + span)
        prefix, total = tokens.truncate(text[start:limit], max_tokens)
        if total <= max_tokens:
            if limit == stop:
                return stop, True
            span += span // 2
            continue
        cut = start + len(prefix)
        if cut == start:
            # Not even one character fits (a budget below 4 tokens): the character is a chunk alone.
            return start + 1, False
        return _boundary(text, start, cut, stop), False


def _boundary(text: str, start: int, cut: int, stop: int) -> int:
    """The best end at or before ``cut`` within the slack: the last paragraph break, else the last
    sentence end or line break, else the last space; else ``cut`` itself (less trailing whitespace)."""
    low = max(start + 1, cut - int((cut - start) * BOUNDARY_SLACK))
    best, best_rank = -1, 0
    # A few characters past the cut tell whether whitespace follows it and what kind.
    for match in _BREAK.finditer(text, low, min(stop, cut + 8)):
        position = match.start()
        if position > cut:
            break
        if match.lastgroup == "paragraph":
            rank = _PARAGRAPH
        elif match.lastgroup == "line" or _ends_sentence(text, start, position):
            rank = _SENTENCE
        else:
            rank = _SPACE
        if rank >= best_rank:
            best, best_rank = position, rank
    if best > start:
        return best
    return _trim_end(text, start, cut)


def _ends_sentence(text: str, start: int, position: int) -> bool:
    """Whether ``text[:position]`` ends with a sentence end, maybe followed by closing quotes or brackets."""
    index = position - 1
    while index > start and text[index] in _CLOSERS:
        index -= 1
    return text[index] in _SENTENCE_END


def _next_start(piece: str, start: int, end: int, count: int, overlap_tokens: int, tokens: _Tokens) -> int:
    """Where the next window starts: ``overlap_tokens`` tokens before ``end``, always after ``start``."""
    keep = count - overlap_tokens
    if keep <= 0:
        return end
    offset = len(tokens.truncate(piece, keep)[0])
    return start + offset if offset > 0 else end


def _skip_space(text: str, position: int, stop: int) -> int:
    match = _NON_SPACE.search(text, position, stop)
    return stop if match is None else match.start()


def _trim_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over trailing whitespace (``text[start]`` is never whitespace)."""
    return start + max(1, len(text[start:end].rstrip()))

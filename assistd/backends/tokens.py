"""Offline token counts for chat prompts, the way OpenAI's models count them.

Text is counted with ``toktok`` (PyPI: ``toktok-rs``), a Rust BPE tokenizer whose counts are
identical to ``tiktoken``'s and whose vocabularies are compiled in: nothing is downloaded at run time.
Encodings: ``o200k_base`` (GPT-4o, GPT-4.1, GPT-5, o-series; the default), ``cl100k_base`` (GPT-4,
GPT-3.5), ``o200k_harmony`` (gpt-oss) and ``qwen3.5``. An unknown name raises ``KeyError``.

A chat prompt costs more than its texts: :func:`count_chat_tokens` adds the framing of OpenAI's own
counting recipe (the openai-cookbook's "How to count tokens with tiktoken"): 3 tokens per message,
its role, 1 more for a ``name``, and 3 for the ``<|start|>assistant<|message|>`` that primes the reply.
On that recipe's example conversation it gives 124 tokens with ``o200k_base`` and 129 with
``cl100k_base``, as the API reports for gpt-4o and gpt-4. For anything else it is an estimate:

* content given as a list of parts: text (and refusal) parts are counted; an image part costs a
  fixed :data:`IMAGE_TOKENS` (:data:`IMAGE_TOKENS_LOW` at ``detail: low``), since its real cost
  depends on pixel sizes we do not fetch; other parts (audio, files) a fixed :data:`OTHER_PART_TOKENS`;
* an assistant's ``tool_calls``: each call's name and arguments, plus :data:`PER_TOOL_CALL` tokens
  of wrapping (OpenAI does not document how it renders them);
* tool messages: like any message (their ``tool_call_id`` is not shown to the model);
* the ``tools`` definitions of a request are not messages and are not counted here.

When ``toktok`` is not installed, counts fall back to a heuristic of one token per 4 bytes of UTF-8
(about right for English; it undercounts CJK text somewhat) and a warning is logged once.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
from collections.abc import Iterable
from typing import Any, Protocol

logger = logging.getLogger("assistd.backends")

DEFAULT_ENCODING = "o200k_base"
PER_MESSAGE = 3  # <|start|>, the separator after the role, <|end|>
PER_NAME = 1  # a message's "name" costs its text plus one token
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
PER_TOOL_CALL = 3  # the wrapping of one call in an assistant message, an estimate
IMAGE_TOKENS_LOW = 85  # OpenAI's price of any image at detail "low"
IMAGE_TOKENS = 765  # a 1024x1024 image at detail "high"/"auto": 85 + 4 tiles x 170
OTHER_PART_TOKENS = 100  # audio, files and parts we do not know: a round guess
BYTES_PER_TOKEN = 4  # the fallback heuristic without toktok


class _BatchCount(Protocol):
    """``toktok.batch_count``'s signature (toktok ships no type hints)."""

    def __call__(
        self, texts: Iterable[str], encoding: str = ..., threads: int = ..., with_special: bool = ...
    ) -> list[int]: ...


@functools.cache
def _batch_count() -> _BatchCount | None:
    """toktok's counter, or None when it is not installed. Imported by name so that type checking
    works with or without it installed."""
    try:
        module = importlib.import_module("toktok")
    except ImportError:
        logger.warning(
            "toktok-rs is not installed: token counts are estimated as %d bytes a token", BYTES_PER_TOKEN
        )
        return None
    counter: _BatchCount = module.batch_count
    return counter


def _count_all(texts: list[str], encoding: str) -> int:
    counter = _batch_count()
    if counter is None:
        return sum(math.ceil(len(text.encode()) / BYTES_PER_TOKEN) for text in texts)
    # One thread: the texts of one prompt are few and short, a pool would cost more than it saves.
    # Special-token strings in user text are text to the model, so they are counted as text.
    return sum(counter(texts, encoding, threads=1, with_special=False))


def count_text_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """The tokens of one plain text."""
    return _count_all([text], encoding)


def count_chat_tokens(messages: list[dict[str, Any]], encoding: str = DEFAULT_ENCODING) -> int:
    """The prompt tokens of a Chat Completions ``messages`` list, framing included (see the module)."""
    texts: list[str] = []
    fixed = REPLY_PRIMING
    for message in messages:
        fixed += PER_MESSAGE + _collect_message(message, texts)
    return fixed + _count_all(texts, encoding)


def _collect_message(message: dict[str, Any], texts: list[str]) -> int:
    """Appends the message's texts to ``texts``; returns its fixed costs beyond ``PER_MESSAGE``."""
    fixed = 0
    texts.append(str(message.get("role", "")))
    if isinstance(name := message.get("name"), str) and name:
        texts.append(name)
        fixed += PER_NAME
    fixed += _collect_content(message.get("content"), texts)
    if isinstance(refusal := message.get("refusal"), str):
        texts.append(refusal)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        texts.append(str(function.get("name", "")))
        texts.append(str(function.get("arguments", "")))
        fixed += PER_TOOL_CALL
    return fixed


def _collect_content(content: Any, texts: list[str]) -> int:
    """Appends the texts of a message's content; returns the fixed cost of its non-text parts."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    if not isinstance(content, list):
        return 0  # None: an assistant message that only calls tools
    fixed = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))
        elif kind == "image_url":
            detail = (part.get("image_url") or {}).get("detail")
            fixed += IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS
        else:
            fixed += OTHER_PART_TOKENS
    return fixed

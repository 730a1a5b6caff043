"""Object ids: OpenAI's prefixes followed by 24 random base62 characters (~143 bits)."""

from __future__ import annotations

import re
import secrets
import string
import time
from enum import StrEnum

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 24


class Prefix(StrEnum):
    ASSISTANT = "asst_"
    THREAD = "thread_"
    MESSAGE = "msg_"
    RUN = "run_"
    STEP = "step_"
    TOOL_CALL = "call_"
    FILE = "file-"
    VECTOR_STORE = "vs_"
    FILE_BATCH = "vsfb_"
    REQUEST = "req_"
    CHAT_COMPLETION = "chatcmpl-"
    API_KEY = "key_"
    PROJECT = "proj_"


# Random bytes below this map evenly onto the alphabet (4 x 62); the few above are drawn again.
_EVEN_BYTES = 256 - 256 % len(_ALPHABET)


def new_id(prefix: Prefix) -> str:
    # One draw of random bytes rather than a secrets.choice per character: a run makes several ids,
    # and 24 choices cost eight times as much (17 against 2 us).
    chars: list[str] = []
    while len(chars) < _RANDOM_LENGTH:
        draw = secrets.token_bytes(_RANDOM_LENGTH + 8)
        chars += [_ALPHABET[byte % len(_ALPHABET)] for byte in draw if byte < _EVEN_BYTES]
    return prefix.value + "".join(chars[:_RANDOM_LENGTH])


def now() -> int:
    """The current time as the API reports it: integer Unix seconds."""
    return int(time.time())


_PLAUSIBLE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_plausible_id(value: str) -> bool:
    """Whether ``value`` could be an object id at all. Anything else names no object, and is never sent
    to the database (PostgreSQL refuses some characters outright)."""
    return _PLAUSIBLE.fullmatch(value) is not None

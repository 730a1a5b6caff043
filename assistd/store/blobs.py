"""Where file contents live: a small interface, and its local-disk implementation.

Contents are written once (under a key the caller chooses, the file id) and never changed; a write that
fails leaves nothing behind. An S3-compatible store is the obvious second implementation.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio

CHUNK_BYTES = 1024 * 1024


class TooLarge(Exception):
    """The content is larger than the caller allowed; nothing was stored."""


class BlobStore(Protocol):
    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        """Stores everything ``source`` holds from its current position under ``key``; its size in
        bytes. ``TooLarge`` beyond ``limit`` bytes."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The content, in chunks. ``FileNotFoundError`` if there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the content; nothing happens if there is none."""
        ...


class LocalBlobStore:
    """One file per key under ``root``, written to a temporary file first and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """Where the content of ``key`` lies (for a copy that need not pass through memory)."""
        # Keys are server-made ids; two levels of folders keep directories small.
        return self.root / key[-2:] / key

    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        return await anyio.to_thread.run_sync(self._save, key, source, limit)

    def _save(self, key: str, source: BinaryIO, limit: int) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".upload-", delete=False) as sink:
            try:
                while chunk := source.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            except BaseException:
                sink.close()
                os.unlink(sink.name)
                raise
        os.replace(sink.name, target)
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(key), "rb") as content:
            while chunk := await content.read(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, key)

    def _delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

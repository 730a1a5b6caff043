"""Files in and out of a session's /mnt/data, seen from the host.

The directory belongs to code that may be hostile, and the server reads and writes it with more rights
than the sandbox has. So nothing here follows a symbolic link (one to /etc/shadow would otherwise hand
the host's file to the user), everything is opened relative to a directory descriptor, and what is read
is checked to be a regular file after it is opened.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1 << 20
# A directory of more entries than this is not looked through whole after each call.
MAX_SCANNED = 10_000


@dataclass(frozen=True)
class InputFile:
    """A file to put in /mnt/data before a call: ``name`` is a plain file name."""

    name: str
    content: bytes | Path  # the bytes, or a host file to copy
    # False: a file already of that name stays as it is, whatever its content (code may have changed
    # it); the file is put there only when it is missing.
    replace: bool = True


@dataclass(frozen=True)
class OutputFile:
    """A file of /mnt/data that a call created or changed."""

    name: str  # relative to /mnt/data, e.g. "plots/a.png"
    content: bytes

    @property
    def sandbox_path(self) -> str:
        return f"/mnt/data/{self.name}"


Stamp = tuple[int, int, int, int]


def check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(name.encode()) > 255:
        raise ValueError(f"not a plain file name for /mnt/data: {name!r}")


def place(root: Path, files: Sequence[InputFile], owner: int | None) -> list[str]:
    """Copy ``files`` into ``root``, skipping those already there with the same content.

    Returns notes for the logs about files that could not be placed.
    """
    notes: list[str] = []
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for file in files:
            if (not file.replace and _exists(directory, file.name)) or _same_content(directory, file):
                continue
            temporary = f".assistd-{secrets.token_hex(8)}"
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=directory,
            )
            try:
                with os.fdopen(fd, "wb", closefd=False) as out:
                    for chunk in _chunks(file.content):
                        out.write(chunk)
                if owner is not None:
                    os.fchown(fd, owner, owner)  # code may change or delete the files it was given
            except BaseException:
                os.unlink(temporary, dir_fd=directory)
                raise
            finally:
                os.close(fd)
            try:
                # rename replaces whatever the name is, a symbolic link included, without following it.
                os.rename(temporary, file.name, src_dir_fd=directory, dst_dir_fd=directory)
            except OSError as error:
                os.unlink(temporary, dir_fd=directory)
                notes.append(f"Could not put {file.name} in /mnt/data: {error.strerror}.")
    finally:
        os.close(directory)
    return notes


def snapshot(root: Path) -> dict[str, Stamp]:
    return {name: stamp for name, stamp, _ in _walk(root)}


def changes(
    root: Path, before: dict[str, Stamp], *, max_bytes: int, max_files: int
) -> tuple[list[OutputFile], list[str]]:
    """The files created or changed since ``before``, and notes on those left out."""
    found: list[OutputFile] = []
    notes: list[str] = []
    truncated: list[bool] = []
    for name, stamp, opener in _walk(root, truncated):
        if before.get(name) == stamp:
            continue
        if len(found) >= max_files:
            notes.append(f"/mnt/data/{name} was not returned: only {max_files} files are returned per call.")
            continue
        try:
            name.encode()
        except UnicodeEncodeError:
            notes.append(f"A file whose name is not UTF-8 ({name!r}) was not returned.")
            continue
        try:
            content = _read_regular(opener, max_bytes)
        except _TooLarge:
            notes.append(
                f"/mnt/data/{name} was not returned: it is larger than the {max_bytes} bytes allowed."
            )
            continue
        if content is not None:
            found.append(OutputFile(name, content))
    if truncated:
        notes.append(f"/mnt/data holds more than {MAX_SCANNED} files: only the first were looked at.")
    found.sort(key=lambda file: file.name)
    return found, notes


def _walk(root: Path, truncated: list[bool] | None = None) -> Iterator[tuple[str, Stamp, _Opener]]:
    """Regular files under ``root``, by path relative to it; the opener is valid until the next item."""
    seen = 0
    for dirpath, _dirs, names, directory in os.fwalk(root, follow_symlinks=False):
        relative = os.path.relpath(dirpath, root)
        for name in sorted(names):
            seen += 1
            if seen > MAX_SCANNED:
                if truncated is not None:
                    truncated.append(True)
                return
            try:
                info = os.stat(name, dir_fd=directory, follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile
            if not stat.S_ISREG(info.st_mode) or name.startswith(".assistd-"):
                continue
            path = name if relative == "." else f"{relative}/{name}"
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            yield path, stamp, _Opener(directory, name)


@dataclass(frozen=True)
class _Opener:
    directory: int
    name: str


class _TooLarge(Exception):
    pass


def _read_regular(opener: _Opener, max_bytes: int) -> bytes | None:
    """The file's bytes, or None when it is no longer a readable regular file."""
    try:
        fd = os.open(opener.name, _OPEN_READ, dir_fd=opener.directory)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, _CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _exists(directory: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _same_content(directory: int, file: InputFile) -> bool:
    try:
        fd = os.open(file.name, _OPEN_READ, dir_fd=directory)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        present = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            present.update(chunk)
    finally:
        os.close(fd)
    wanted = hashlib.sha256()
    for chunk in _chunks(file.content):
        wanted.update(chunk)
    return present.digest() == wanted.digest()


def _chunks(content: bytes | Path) -> Iterator[bytes]:
    if isinstance(content, bytes):
        yield content
        return
    with content.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk

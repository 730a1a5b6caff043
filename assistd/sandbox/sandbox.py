"""Sessions of sandboxed Python: one stateful kernel and one /mnt/data directory per session key."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import zmq
import zmq.asyncio

from assistd.config import Settings
from assistd.sandbox import bwrap
from assistd.sandbox import files as mnt_data
from assistd.sandbox.files import InputFile, OutputFile
from assistd.sandbox.kernel import Kernel, KernelSpec, KernelStartError, LogText, Output

logger = logging.getLogger("assistd.sandbox")

_LOST = "Variables, imports and loaded data are gone; files in /mnt/data remain."
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A failed probe is not repeated for this long: the server may ask on every request.
_PROBE_RETRY_S = 60.0


class SandboxUnavailable(Exception):
    """Code cannot run here (no bubblewrap, or no kernel starts); the message says why."""


@dataclass(frozen=True)
class Execution:
    """The outcome of one call. Code that raised is a normal outcome: ``failed``, with the traceback."""

    logs: str  # stdout, stderr, results and tracebacks, in order, as text
    images: list[bytes]  # PNG images the code displayed
    files: list[OutputFile]  # files of /mnt/data the call created or changed
    failed: bool


@dataclass
class _Session:
    key: str
    directory: Path
    last_used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kernel: Kernel | None = None
    pending: int = 0  # calls that hold this record: the reaper leaves it alone
    notice: str | None = None  # said at the start of the next call's logs


class CodeSandbox:
    """Runs Python for code_interpreter, one sandboxed kernel per session (a thread id).

    ``execute`` starts kernels as needed; ``close`` stops them all. ``start`` (or ``async with``) runs
    a background task that ends idle sessions; ``reap_idle`` does one round of it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: dict[str, _Session] = {}
        # At most this many calls hold a kernel at once, so that one is always idle for eviction.
        self._slots = asyncio.Semaphore(settings.code_max_kernels)
        self._prepare_lock = asyncio.Lock()
        self._probe_lock = asyncio.Lock()
        self._probe: tuple[float, str | None] | None = None
        self._spec: KernelSpec | None = None
        self._root: Path | None = None
        self._root_lock: int | None = None
        self._context: zmq.asyncio.Context | None = None
        self._reaper: asyncio.Task[None] | None = None

    # --- availability ------------------------------------------------------------------------------

    async def available(self) -> str | None:
        """None when code can run; otherwise why not, in words for the person running the server.

        The first call starts a kernel to be sure (under a second).
        """
        async with self._probe_lock:
            now = time.monotonic()
            if self._probe is not None and (self._probe[1] is None or now - self._probe[0] < _PROBE_RETRY_S):
                return self._probe[1]
            reason = await self._try_kernel()
            self._probe = (now, reason)
            if reason is not None:
                logger.warning("code_interpreter is unavailable: %s", reason)
            return reason

    def _missing(self) -> str | None:
        if self._settings.code_unsafe_no_sandbox:
            return None
        if not sys.platform.startswith("linux"):
            return "the code_interpreter sandbox needs Linux (bubblewrap)"
        if shutil.which("bwrap") is None:
            return (
                "bubblewrap is not installed (the `bwrap` command): install the package `bubblewrap` "
                "(apt-get install bubblewrap), see docs/code-interpreter.md"
            )
        return None

    async def _try_kernel(self) -> str | None:
        if (reason := self._missing()) is not None:
            return reason
        try:
            spec, root = await self._prepare()
        except SandboxUnavailable as error:
            return str(error)
        directory = root / f"probe-{secrets.token_hex(4)}"
        await asyncio.to_thread(self._make_dir, directory)
        try:
            kernel = await Kernel.start(spec, directory, self._zmq())
            try:
                output = Output(LogText(1000))
                await kernel.run("print(6 * 7)", output, wall_seconds=30)
            finally:
                await kernel.kill()
        except (KernelStartError, OSError) as error:
            return f"the code_interpreter sandbox cannot start a kernel: {error}"
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, True)
        if output.log.text() != "42\n":
            return f"the code_interpreter kernel does not work: it printed {output.log.text()!r} for 6 * 7"
        return None

    # --- running code ------------------------------------------------------------------------------

    async def execute(self, session: str, code: str, files: Sequence[InputFile] = ()) -> Execution:
        """Run ``code`` in ``session``'s kernel, after putting ``files`` in its /mnt/data.

        Raises SandboxUnavailable when no kernel can run, ValueError for an input name that is not a
        plain file name.
        """
        for file in files:
            mnt_data.check_name(file.name)
        if (reason := self._missing()) is not None:
            raise SandboxUnavailable(reason)
        spec, _ = await self._prepare()
        async with self._slots:
            while True:
                record = self._sessions.get(session) or self._new_session(session)
                record.pending += 1
                try:
                    async with record.lock:
                        # Unless the session ended while this call waited: then go round for a new one.
                        if self._sessions.get(session) is record:
                            record.last_used = time.monotonic()
                            try:
                                return await self._run(record, spec, code, files)
                            finally:
                                record.last_used = time.monotonic()
                finally:
                    record.pending -= 1

    async def _run(
        self, record: _Session, spec: KernelSpec, code: str, files: Sequence[InputFile]
    ) -> Execution:
        settings = self._settings
        output = Output(LogText(settings.code_max_log_chars))
        notes: list[str] = []
        kernel = record.kernel
        if kernel is not None and not kernel.alive:
            notes.append(f"{kernel.death(during=False)} {_LOST} This call runs in a new kernel.")
            await kernel.kill()
            record.kernel = kernel = None
        if record.notice is not None:
            notes.append(record.notice)
            record.notice = None
        if kernel is None:
            await self._make_room()
            try:
                kernel = await Kernel.start(spec, record.directory, self._zmq())
            except KernelStartError as error:
                raise SandboxUnavailable(f"the code_interpreter kernel did not start: {error}") from None
            record.kernel = kernel
        notes += await asyncio.to_thread(mnt_data.place, record.directory, files, spec.host_id)
        before = await asyncio.to_thread(mnt_data.snapshot, record.directory)
        for note in notes:
            output.log.add(f"[{note}]\n")
        failure = await kernel.run(code, output, settings.code_wall_seconds)
        if failure is not None:
            record.kernel = None
            await kernel.kill()
            output.log.add(f"\n[{failure} {_LOST} The next call starts a new kernel.]\n")
        produced, skipped = await asyncio.to_thread(
            mnt_data.changes,
            record.directory,
            before,
            max_bytes=settings.code_max_output_file_bytes,
            max_files=settings.code_max_output_files,
        )
        for note in skipped:
            output.log.add(f"[{note}]\n")
        return Execution(logs=output.log.text(), images=output.images, files=produced, failed=output.failed)

    async def _make_room(self) -> None:
        """Stop least recently used idle kernels until one more may start."""
        limit = self._settings.code_max_kernels
        while sum(1 for s in self._sessions.values() if s.kernel is not None) >= limit:
            idle = [s for s in self._sessions.values() if s.kernel is not None and not s.lock.locked()]
            if not idle:
                return  # cannot happen while every call holds a slot; never block on it
            victim = min(idle, key=lambda s: s.last_used)
            kernel, victim.kernel = victim.kernel, None
            victim.notice = (
                "This session's kernel had been stopped to make room for others "
                f"(at most {limit} run at once). {_LOST} This call runs in a new kernel."
            )
            assert kernel is not None
            await kernel.kill()

    # --- ending sessions ---------------------------------------------------------------------------

    async def end_session(self, session: str) -> None:
        """Stop the session's kernel and delete its files (its thread was deleted, say)."""
        record = self._sessions.pop(session, None)
        if record is not None:
            async with record.lock:
                await self._discard(record)

    async def reap_idle(self) -> list[str]:
        """End the sessions unused for ``code_idle_seconds``; returns their keys."""
        cutoff = time.monotonic() - self._settings.code_idle_seconds
        ended = [
            record
            for record in self._sessions.values()
            if record.last_used < cutoff and record.pending == 0 and not record.lock.locked()
        ]
        for record in ended:
            del self._sessions[record.key]
        for record in ended:
            await self._discard(record)
        return [record.key for record in ended]

    async def _discard(self, record: _Session) -> None:
        if record.kernel is not None:
            kernel, record.kernel = record.kernel, None
            await kernel.kill()
        await asyncio.to_thread(shutil.rmtree, record.directory, True)

    async def start(self) -> None:
        """Start the background task that ends idle sessions."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(), name="code-sandbox-reaper")

    async def _reap_forever(self) -> None:
        period = min(60.0, max(1.0, self._settings.code_idle_seconds / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.reap_idle()
            except Exception:
                logger.exception("ending idle code_interpreter sessions failed")

    async def close(self) -> None:
        """Stop every kernel and delete every session's files."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        records, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(self._discard(record) for record in records), return_exceptions=True)
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
        if self._root is not None:
            await asyncio.to_thread(_remove_instance, self._root)
            self._root = None
        if self._root_lock is not None:
            os.close(self._root_lock)
            self._root_lock = None
        self._spec = None

    async def __aenter__(self) -> CodeSandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- set-up ------------------------------------------------------------------------------------

    def _new_session(self, key: str) -> _Session:
        assert self._root is not None
        name = key if _SAFE_KEY.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:32]
        # Unique per record: a session ended while a call waited is deleted while the call's new one runs.
        directory = self._root / "sessions" / f"{name}-{secrets.token_hex(4)}"
        self._make_dir(directory)
        record = _Session(key=key, directory=directory, last_used=time.monotonic())
        self._sessions[key] = record
        return record

    def _make_dir(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._spec is not None and self._spec.host_id is not None:
            os.chown(directory, self._spec.host_id, self._spec.host_id)

    def _zmq(self) -> zmq.asyncio.Context:
        if self._context is None:
            self._context = zmq.asyncio.Context()
            # Connect once and never again: a reconnect would follow the socket's path anew, which the
            # sandbox can by then have replaced with a link to some other socket of the host.
            self._context.setsockopt(zmq.RECONNECT_IVL, -1)
        return self._context

    async def _prepare(self) -> tuple[KernelSpec, Path]:
        async with self._prepare_lock:
            if self._spec is None or self._root is None:
                try:
                    await asyncio.to_thread(self._prepare_sync)
                except (OSError, ValueError, subprocess.SubprocessError) as error:
                    raise SandboxUnavailable(
                        f"the code_interpreter sandbox cannot be set up: {error}"
                    ) from None
            assert self._spec is not None
            assert self._root is not None
            return self._spec, self._root

    def _prepare_sync(self) -> None:
        settings = self._settings
        python, python_dirs = python_layout(settings.code_python)
        base = settings.data_dir / "sandbox"
        base.mkdir(parents=True, exist_ok=True)
        _remove_stale(base)
        root = base / f"{os.getpid()}-{secrets.token_hex(4)}"
        # Only the server goes through here: the sandbox reaches its directories by mounts.
        root.mkdir(mode=0o700)
        lock = os.open(root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        unsafe = settings.code_unsafe_no_sandbox
        bwrap.etc_files(root / "etc")
        # Kernels' sockets live under the system's temporary directory (a data dir's path may be too
        # long for a unix socket); the root names it, so that a later process can remove it if this
        # one dies without closing.
        runtime_base = Path(tempfile.mkdtemp(prefix="assistd-sandbox-"))
        (root / "runtime").write_text(str(runtime_base))
        self._spec = KernelSpec(
            python=python,
            python_dirs=python_dirs,
            limits={
                "RLIMIT_CPU": settings.code_cpu_seconds,
                "RLIMIT_AS": settings.code_memory_bytes,
                "RLIMIT_NPROC": settings.code_processes,
                "RLIMIT_FSIZE": settings.code_max_file_bytes,
                "RLIMIT_CORE": 0,
            },
            bwrap=None if unsafe else shutil.which("bwrap"),
            host_id=settings.code_sandbox_uid if os.geteuid() == 0 and not unsafe else None,
            data_dir=settings.data_dir,
            etc_dir=root / "etc",
            runtime_base=runtime_base,
            tmp_bytes=settings.code_max_file_bytes,
        )
        self._root, self._root_lock = root, lock
        if unsafe:
            logger.warning(
                "ASSISTD_CODE_UNSAFE_NO_SANDBOX is set: code_interpreter runs code without a sandbox, "
                "with this server's rights"
            )


def python_layout(python: Path | None) -> tuple[Path, tuple[Path, ...]]:
    """The interpreter to start (by its real directory) and the directories its installation needs."""
    if python is None:
        executable, prefix, base = sys.executable, sys.prefix, sys.base_prefix
    else:
        probe = "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix]))"
        done = subprocess.run(
            [str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
        executable, prefix, base = json.loads(done.stdout)
    # The venv's bin directory by its real path (so pyvenv.cfg is found beside it), the name unchanged
    # (a venv's python is a link to the base interpreter, which must not be run directly).
    command = Path(executable).parent.resolve() / Path(executable).name
    needed = {Path(prefix).resolve(), Path(base).resolve(), command.parent, command.resolve().parent}
    return command, tuple(sorted(needed))


def _remove_stale(base: Path) -> None:
    # Directories of server processes that are gone: their lock is free. A young one may belong to a
    # process that has not taken its lock yet.
    for entry in base.iterdir():
        try:
            if time.time() - entry.stat().st_mtime < 60:
                continue
            lock = os.open(entry / "lock", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # alive
        finally:
            os.close(lock)
        _remove_instance(entry)


def _remove_instance(root: Path) -> None:
    with contextlib.suppress(OSError):
        runtime_base = Path((root / "runtime").read_text())
        if runtime_base.name.startswith("assistd-sandbox-"):
            shutil.rmtree(runtime_base, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)

"""One Jupyter kernel in its sandbox: start it, run code in it, interrupt it, kill it.

The kernel talks ZeroMQ over unix sockets (jupyter's ``ipc`` transport) in a directory mounted into the
sandbox: TCP on loopback cannot cross the sandbox's network namespace, which has no way out at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from assistd.sandbox import bwrap, launch

if TYPE_CHECKING:
    # Imported where a kernel is started: a server that runs no code never pays for jupyter_client.
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.connect import KernelConnectionInfo

logger = logging.getLogger("assistd.sandbox")

START_TIMEOUT_S = 60.0
# How long an interrupted call may take to stop before its kernel is killed instead.
INTERRUPT_GRACE_S = 3.0
# How often a wait for the kernel's messages looks whether its process is still there.
_POLL_S = 0.25
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# A unix socket's path must fit in 108 bytes; the longest of ours is "<dir>/s-5".
_MAX_SOCKET_DIR = 100


class KernelStartError(Exception):
    """The kernel could not be started; the message says why."""


@dataclass(frozen=True)
class KernelSpec:
    """How to start kernels: fixed for the life of the sandbox."""

    python: Path  # the interpreter, by its real directory (see sandbox.python_layout)
    python_dirs: tuple[Path, ...]
    limits: dict[str, int]
    bwrap: str | None  # None: unsafe mode, no sandbox at all
    host_id: int | None  # as root: the host uid and gid code runs as
    data_dir: Path
    etc_dir: Path
    runtime_base: Path  # holds each kernel's socket directory: a short path, as unix sockets need
    tmp_bytes: int


@dataclass
class Output:
    """What one call produced, in the order it came."""

    log: LogText
    images: list[bytes] = field(default_factory=list)
    failed: bool = False


class LogText:
    """Text with a ceiling: past ``limit`` characters the middle is cut, and the cut is said."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self._cut = 0

    def add(self, text: str) -> None:
        if self._head_len < self._half:
            room = self._half - self._head_len
            self._head.append(text[:room])
            self._head_len += min(len(text), room)
            text = text[room:]
        if not text:
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > self._half:
            extra = self._tail_len - self._half
            first = self._tail[0]
            if len(first) <= extra:
                self._tail.popleft()
                self._tail_len -= len(first)
                self._cut += len(first)
            else:
                self._tail[0] = first[extra:]
                self._tail_len -= extra
                self._cut += extra

    def text(self) -> str:
        head = "".join(self._head)
        if not self._cut:
            return head + "".join(self._tail)
        notice = f"\n[... {self._cut} characters of output cut ...]\n"
        return head + notice + "".join(self._tail)


class Kernel:
    """A running kernel. Not safe for concurrent calls: its owner serialises them."""

    def __init__(
        self,
        runtime_dir: Path,
        process: asyncio.subprocess.Process,
        client: AsyncKernelClient,
        stderr: deque[str],
        stderr_task: asyncio.Task[None],
    ) -> None:
        self._runtime_dir = runtime_dir
        self._process = process
        self._client = client
        self._stderr = stderr
        self._stderr_task = stderr_task

    # --- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    async def start(cls, spec: KernelSpec, session_dir: Path, context: zmq.asyncio.Context) -> Kernel:
        runtime_dir = Path(tempfile.mkdtemp(prefix="k", dir=spec.runtime_base))
        if len(str(runtime_dir)) > _MAX_SOCKET_DIR:
            shutil.rmtree(runtime_dir, ignore_errors=True)
            raise KernelStartError(f"the temporary directory {spec.runtime_base} has too long a path")
        process: asyncio.subprocess.Process | None = None
        stderr_task: asyncio.Task[None] | None = None
        try:
            key = secrets.token_hex(32)
            inside = Path(bwrap.RUN_DIR) if spec.bwrap else runtime_dir
            connection = json.dumps(_connection(f"{inside}/s", key))
            (runtime_dir / "connection.json").write_text(connection)
            if spec.host_id is not None:
                os.chown(runtime_dir, spec.host_id, spec.host_id)
            process = await _spawn(spec, session_dir, runtime_dir, inside)
            stderr: deque[str] = deque(maxlen=4)
            stderr_task = asyncio.create_task(_drain(process, stderr))
            await _wait_for_sockets(process, runtime_dir, stderr)
            from jupyter_client.asynchronous.client import AsyncKernelClient

            client = AsyncKernelClient(context=context)
            client.load_connection_info(_connection(f"{runtime_dir}/s", key))
            # No heartbeat channel: its reconnects would follow paths the sandbox can replace, and the
            # process itself says when the kernel is gone.
            client.start_channels(stdin=False, hb=False)
        except BaseException:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            if stderr_task is not None:
                stderr_task.cancel()
            shutil.rmtree(runtime_dir, ignore_errors=True)
            raise
        kernel = cls(runtime_dir, process, client, stderr, stderr_task)
        try:
            await kernel._wait_until_ready()
        except BaseException:
            await kernel.kill()
            raise
        return kernel

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            msg_id = self._client.kernel_info()
            if await self._reply(msg_id, within=1.0) is not None:
                # The reply proves the shell socket; a message on iopub proves the subscription (a SUB
                # socket misses what was published before it joined). Messages of this exchange that
                # are still queued are skipped later: they answer no execute request.
                with contextlib.suppress(Empty):
                    await self._client.get_iopub_msg(timeout=0.5)
                    return
            if not self.alive:
                raise KernelStartError(f"the kernel exited during start:\n{self.stderr_tail()}")
        raise KernelStartError(f"the kernel did not answer within {START_TIMEOUT_S:.0f} s")

    @property
    def alive(self) -> bool:
        return self._process.returncode is None

    def stderr_tail(self) -> str:
        return "".join(self._stderr).strip()[-2000:] or "(no output)"

    async def kill(self) -> None:
        """Stop the kernel and everything it started: killing bwrap kills the sandbox's pid namespace."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        await self._process.wait()
        self._client.stop_channels()
        self._stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._stderr_task
        shutil.rmtree(self._runtime_dir, ignore_errors=True)

    # --- running code ------------------------------------------------------------------------------

    async def run(self, code: str, output: Output, wall_seconds: float) -> str | None:
        """Run ``code``, collecting into ``output``. Returns None, or why the kernel is now unusable."""
        msg_id = self._client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        try:
            if await self._collect(msg_id, output, time.monotonic() + wall_seconds):
                await self._reply(msg_id, within=1.0)
                return None
        except asyncio.CancelledError:
            # The caller gave up (a cancelled run): stop the code, keep the kernel. The next request
            # queues behind this one in the kernel, and replies are matched by id.
            if self.alive:
                self.interrupt()
            raise
        output.failed = True
        if not self.alive:
            return self.death(during=True)
        self.interrupt()
        stopped = await self._collect(msg_id, output, time.monotonic() + INTERRUPT_GRACE_S)
        if not self.alive:
            return self.death(during=True)
        limit = f"{wall_seconds:g} seconds"
        if stopped:
            output.log.add(f"\n[Execution interrupted: it ran longer than the {limit} allowed per call.]\n")
            return None
        await self.kill()
        return (
            f"Execution stopped: it ran longer than the {limit} allowed per call and did not stop when "
            "interrupted, so its kernel was restarted."
        )

    def interrupt(self) -> None:
        # ipykernel signals itself on this message; a signal from outside would reach bwrap instead.
        with contextlib.suppress(zmq.ZMQError):
            self._client.control_channel.send(self._client.session.msg("interrupt_request", {}))

    def death(self, *, during: bool) -> str:
        """What to tell the user about the kernel's end."""
        code = self._process.returncode
        how = _status(code) if code is not None else "still running"
        detail = self.stderr_tail()
        logger.info("a code_interpreter kernel died (%s): %s", how, detail[-500:])
        when = "while running this code" if during else "since the last call"
        return (
            f"The kernel died {when} ({how}), probably from hitting a limit (memory, processes, CPU "
            "time) or from a signal."
        )

    async def _collect(self, msg_id: str, output: Output, deadline: float) -> bool:
        """Messages of ``msg_id`` into ``output`` until the kernel is idle (True) or time is up (False)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.alive:
                return False
            try:
                msg = await self._client.get_iopub_msg(timeout=min(remaining, _POLL_S))
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # output of earlier code, such as a thread it left running
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                return True
            if kind == "stream":
                output.log.add(content.get("text", ""))
            elif kind == "error":
                output.failed = True
                traceback = "\n".join(
                    content.get("traceback") or [f"{content['ename']}: {content['evalue']}"]
                )
                output.log.add(_ANSI.sub("", traceback) + "\n")
            elif kind in ("execute_result", "display_data"):
                data = content.get("data", {})
                if "image/png" in data:
                    png = base64.b64decode(data["image/png"])
                    if png not in output.images:  # a figure both shown and left as the result
                        output.images.append(png)
                elif "text/plain" in data:
                    output.log.add(_ANSI.sub("", data["text/plain"]) + "\n")

    async def _reply(self, msg_id: str, within: float) -> dict[str, Any] | None:
        """The shell reply to ``msg_id``; replies to earlier requests are read and dropped."""
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = await self._client.get_shell_msg(timeout=remaining)
            except Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None


async def _spawn(
    spec: KernelSpec, session_dir: Path, runtime_dir: Path, inside: Path
) -> asyncio.subprocess.Process:
    kernel_argv = [
        str(spec.python),
        "-m",
        "ipykernel_launcher",
        "-f",
        f"{inside}/connection.json",
        "--HistoryManager.enabled=False",
        "--InteractiveShell.colors=nocolor",
    ]
    if spec.bwrap is None:
        return await _spawn_unsafe(spec, session_dir, runtime_dir, kernel_argv)
    env = _kernel_env(Path("/tmp"), f"{spec.python.parent}:/usr/local/bin:/usr/bin:/bin")
    layout = bwrap.Layout(
        python_dirs=spec.python_dirs,
        hidden=spec.data_dir,
        etc_dir=spec.etc_dir,
        session_dir=session_dir,
        runtime_dir=runtime_dir,
        launcher=Path(launch.__file__),
        tmp_bytes=spec.tmp_bytes,
    )
    drop_to = None if spec.host_id is None else bwrap.SANDBOX_ID
    config = json.dumps({"drop_to": drop_to, "limits": spec.limits, "argv": kernel_argv})
    launcher = [str(spec.python), "-I", str(bwrap.LAUNCHER), config]
    if spec.host_id is None:
        prefix = bwrap.command(spec.bwrap, layout, info_fd=None, block_fd=None)
        return await asyncio.create_subprocess_exec(*prefix, *launcher, env=env, **_STDIO)

    # As root: bwrap creates the user namespace and waits while the maps are written (see bwrap.py).
    info_read, info_write = os.pipe()
    block_read, block_write = os.pipe()
    try:
        prefix = bwrap.command(spec.bwrap, layout, info_fd=info_write, block_fd=block_read)
        process = await asyncio.create_subprocess_exec(
            *prefix, *launcher, env=env, **_STDIO, pass_fds=(info_write, block_read)
        )
        os.close(info_write)
        os.close(block_read)
        info_write = block_read = -1
        try:
            # bwrap writes the namespace's first pid, closes the pipe and waits for the id maps.
            raw = await asyncio.wait_for(asyncio.to_thread(_read_all, info_read), START_TIMEOUT_S)
            bwrap.write_id_maps(int(json.loads(raw)["child-pid"]), spec.host_id)
        except (ValueError, KeyError, OSError, TimeoutError):
            process.kill()
            await process.wait()
            detail = (await process.stderr.read()).decode(errors="replace") if process.stderr else ""
            raise KernelStartError(f"bwrap failed to set up the sandbox: {detail.strip()}") from None
        os.write(block_write, b"1")
        return process
    finally:
        for fd in (info_read, info_write, block_read, block_write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


async def _spawn_unsafe(
    spec: KernelSpec, session_dir: Path, runtime_dir: Path, kernel_argv: list[str]
) -> asyncio.subprocess.Process:
    # The host's own process table: a process limit would count the server's processes too.
    limits = {name: value for name, value in spec.limits.items() if name != "RLIMIT_NPROC"}
    home = runtime_dir / "home"
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    # Code written for the sandbox names /mnt/data; here that is the session's directory.
    (startup / "mnt_data.py").write_text(
        "get_ipython().input_transformers_cleanup.append(\n"
        f"    lambda lines: [line.replace('/mnt/data', {str(session_dir)!r}) for line in lines]\n)\n"
    )
    env = _kernel_env(home, f"{spec.python.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    config = json.dumps({"drop_to": None, "limits": limits, "argv": kernel_argv})
    launcher = [str(spec.python), "-I", launch.__file__, config]
    return await asyncio.create_subprocess_exec(*launcher, cwd=session_dir, env=env, **_STDIO)


_STDIO: dict[str, Any] = {
    "stdin": asyncio.subprocess.DEVNULL,
    "stdout": asyncio.subprocess.DEVNULL,
    "stderr": asyncio.subprocess.PIPE,
    # Out of the server's process group: a Ctrl-C meant for the server must not reach its kernels.
    "start_new_session": True,
}


def _connection(ip: str, key: str) -> KernelConnectionInfo:
    # With the ipc transport a "port" only numbers the socket files: <ip>-1 ... <ip>-5.
    from jupyter_client.connect import KernelConnectionInfo

    return KernelConnectionInfo(
        transport="ipc",
        ip=ip,
        key=key,
        signature_scheme="hmac-sha256",
        shell_port=1,
        iopub_port=2,
        stdin_port=3,
        control_port=4,
        hb_port=5,
    )


def _kernel_env(home: Path, path: str) -> dict[str, str]:
    # The kernel gets none of the server's environment: no keys, no database URL.
    return {
        "PATH": path,
        "HOME": str(home),
        "USER": "sandbox",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp" if home == Path("/tmp") else str(home),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "IPYTHONDIR": f"{home}/.ipython",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "PYTHONDONTWRITEBYTECODE": "1",
        # glibc reserves 64 MiB of address space per thread arena, and BLAS libraries a buffer per
        # core: under an address-space limit these would leave little for the code itself.
        "MALLOC_ARENA_MAX": "2",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(process: asyncio.subprocess.Process, into: deque[str]) -> None:
    # The kernel's own stderr, where code's low-level output is echoed too: read it all so that the
    # kernel never blocks on a full pipe, and keep the end for error messages. Chunks, not lines: a
    # line may be any length.
    assert process.stderr is not None
    while chunk := await process.stderr.read(4096):
        into.append(chunk.decode(errors="replace"))


async def _wait_for_sockets(
    process: asyncio.subprocess.Process, runtime_dir: Path, stderr: deque[str]
) -> None:
    # The client connects once, without retrying (see sandbox.py), so the sockets must exist first.
    paths = [runtime_dir / f"s-{port}" for port in range(1, 6)]
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(_listening(path) for path in paths):
        if process.returncode is not None:
            await asyncio.sleep(0.1)  # let the drain task read what it said
            raise KernelStartError(
                f"the kernel exited during start ({_status(process.returncode)}):\n"
                + ("".join(stderr).strip()[-2000:] or "(no output)")
            )
        if time.monotonic() > deadline:
            raise KernelStartError(f"the kernel did not start within {START_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.02)


def _listening(path: Path) -> bool:
    # A socket file exists from bind() on, but accepts connections only after listen().
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _status(code: int) -> str:
    # bwrap exits with 128 + N when the process it ran was killed by signal N.
    number = -code if code < 0 else code - 128 if code > 128 else 0
    try:
        return f"killed by {signal.Signals(number).name}" if number else f"exit status {code}"
    except ValueError:
        return f"exit status {code}"

"""The code_interpreter sandbox (assistd/sandbox), driven in-process: it has no HTTP of its own.

Like test_migrations.py this looks inside assistd, so it is skipped where only the client is installed.
Limits are small here (2 s per call, 512 MiB, 48 processes, 8 MiB files) to keep the module fast.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The server's own dependencies are absent from the client-only environment.
pytest.importorskip("jupyter_client")

from matplotlib import image as mpimg

from assistd.config import Settings
from assistd.sandbox import CodeSandbox, InputFile, OutputFile, SandboxUnavailable
from assistd.sandbox import bwrap as bwrap_layout

pytestmark = [
    pytest.mark.anyio,
    # `make test` installs it where it can (the Makefile's bubblewrap target).
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"),
]

WALL_S = 2.0
SECRET = "db-secret-4f1c"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "code_wall_seconds": WALL_S,
        "code_memory_bytes": 512 * 1024 * 1024,
        "code_processes": 48,
        "code_max_file_bytes": 8 * 1024 * 1024,
        "code_max_output_file_bytes": 1024 * 1024,
        "code_max_kernels": 6,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir like a server's: a database and a stored file, which code must never see."""
    directory = tmp_path_factory.mktemp("assistd-data")
    (directory / "assistd.db").write_text(SECRET)
    (directory / "files").mkdir()
    (directory / "files" / "file-abc").write_text(SECRET)
    return directory


@pytest.fixture(scope="module")
async def sandbox(data_dir: Path) -> AsyncIterator[CodeSandbox]:
    async with CodeSandbox(settings_for(data_dir)) as instance:
        yield instance


def gone(*paths: Path) -> bool:
    return not any(path.exists() for path in paths)


def host_processes_with(argument: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argument.encode() in arguments:
                found.append(int(entry.name))
    return found


# --- what code sees and gets back ---------------------------------------------------------------------


async def test_sandbox_is_available(sandbox: CodeSandbox) -> None:
    assert await sandbox.available() is None


async def test_state_lives_in_its_session_only(sandbox: CodeSandbox) -> None:
    first = await sandbox.execute("thread_state_a", "x = 41\nopen('mine.txt', 'w').write('a')")
    assert first.logs == "1\n"  # the cell's value: write() returns the count of characters
    same = await sandbox.execute("thread_state_a", "print(x + 1)")
    assert (same.logs, same.failed) == ("42\n", False)
    other = await sandbox.execute(
        "thread_state_b", "import os\nprint('x' in globals(), os.listdir('/mnt/data'))"
    )
    assert other.logs == "False []\n"


async def test_logs_hold_output_results_and_tracebacks_in_order(sandbox: CodeSandbox) -> None:
    code = (
        "import sys\n"
        "print('to stdout'); sys.stdout.flush()\n"
        "print('to stderr', file=sys.stderr); sys.stderr.flush()\n"
        "def f():\n"
        "    return 1 / 0\n"
        "f()\n"
    )
    result = await sandbox.execute("thread_logs", code)
    assert result.failed is True
    logs = result.logs
    assert logs.startswith("to stdout\nto stderr\n")
    assert "ZeroDivisionError" in logs
    assert logs.rstrip().endswith("ZeroDivisionError: division by zero")
    assert logs.index("f()") < logs.index("return 1 / 0")  # the whole traceback, outermost first
    assert "\x1b" not in logs  # no colour codes
    value = await sandbox.execute("thread_logs", "6 * 7")
    assert (value.logs, value.failed, value.images, value.files) == ("42\n", False, [], [])


async def test_a_plot_comes_back_as_a_png(sandbox: CodeSandbox) -> None:
    code = (
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')\nplt.show()\n"
    )
    shown = await sandbox.execute("thread_plot", code)
    assert shown.failed is False, shown.logs
    assert len(shown.images) == 1
    png = shown.images[0]
    assert png.startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    height, width, channels = pixels.shape
    assert (height >= 200, width >= 300, channels in (3, 4)) == (True, True, True)
    assert pixels.min() < pixels.max()  # something is drawn

    # A figure left as the cell's value is one image, not one per way it was shown.
    left = await sandbox.execute("thread_plot", "fig, ax = plt.subplots()\nax.bar([1, 2], [3, 4])\nfig")
    assert len(left.images) == 1
    assert left.images[0].startswith(PNG_SIGNATURE)
    assert left.logs == ""


async def test_an_input_csv_is_read_by_pandas(sandbox: CodeSandbox, tmp_path: Path) -> None:
    host_copy = tmp_path / "y.csv"
    host_copy.write_bytes(b"v\n10\n20\n")
    inputs = [InputFile("x.csv", b"a,b\n1,2\n3,4\n5,6\n"), InputFile("y.csv", host_copy)]
    code = (
        "import os, pandas as pd\n"
        "df = pd.read_csv('/mnt/data/x.csv')\n"
        "print(int(df['a'].sum()), int(df['b'].sum()), int(pd.read_csv('y.csv')['v'].sum()))\n"
        "print(os.stat('/mnt/data/x.csv').st_mtime_ns)\n"
    )
    first = await sandbox.execute("thread_csv", code, inputs)
    sums, stamp = first.logs.splitlines()
    assert sums == "9 12 30"
    assert first.files == []  # inputs are not outputs
    # The same content again is not copied again (the kernel may have the file open, or changed it).
    second = await sandbox.execute("thread_csv", code, inputs)
    assert second.logs.splitlines() == [sums, stamp]
    changed = await sandbox.execute("thread_csv", code, [InputFile("x.csv", b"a,b\n100,0\n")])
    assert changed.logs.splitlines()[0] == "100 0 30"
    # Code owns the files it was given.
    edit = await sandbox.execute("thread_csv", "open('x.csv', 'a').write('1,1\\n'); print('ok')")
    assert edit.logs == "ok\n"
    assert edit.files == [OutputFile("x.csv", b"a,b\n100,0\n1,1\n")]


async def test_written_files_come_back_once(sandbox: CodeSandbox) -> None:
    code = (
        "import os\n"
        "os.makedirs('/mnt/data/out', exist_ok=True)\n"
        "open('/mnt/data/out/report.txt', 'w').write('total: 3\\n')\n"
        "open('/mnt/data/big.bin', 'wb').write(b'0' * (2 * 1024 * 1024))\n"
    )
    result = await sandbox.execute("thread_files", code)
    assert result.failed is False
    assert result.files == [OutputFile("out/report.txt", b"total: 3\n")]
    assert result.files[0].sandbox_path == "/mnt/data/out/report.txt"
    assert "/mnt/data/big.bin was not returned: it is larger than the 1048576 bytes allowed" in result.logs
    again = await sandbox.execute("thread_files", "print(open('/mnt/data/out/report.txt').read(), end='')")
    assert (again.logs, again.files) == ("total: 3\n", [])


async def test_links_out_of_mnt_data_are_not_followed(sandbox: CodeSandbox, tmp_path: Path) -> None:
    # The host reads and writes /mnt/data with more rights than the sandbox: a link in it pointing at a
    # host path must neither hand that file out nor let an input overwrite it.
    target = tmp_path / "host-only.txt"
    target.write_text(SECRET)
    code = f"import os\nos.symlink({str(target)!r}, 'leak.txt')\nos.symlink({str(target)!r}, 'in.csv')\n"
    linked = await sandbox.execute("thread_links", code)
    assert (linked.failed, linked.files) == (False, [])
    placed = await sandbox.execute(
        "thread_links", "print(open('in.csv').read())", [InputFile("in.csv", b"mine")]
    )
    assert placed.logs == "mine\n"
    assert target.read_text() == SECRET


# --- what code cannot do ------------------------------------------------------------------------------


async def test_the_host_data_dir_is_not_visible(sandbox: CodeSandbox, data_dir: Path) -> None:
    code = (
        "import os\n"
        f"print(os.path.exists({str(data_dir)!r}), os.path.exists({str(data_dir / 'assistd.db')!r}))\n"
        "print(sorted(os.listdir('/')))\n"
        "hits = []\n"
        "for top in ('/etc', '/mnt', '/run', '/tmp'):\n"
        "    for folder, _, names in os.walk(top):\n"
        "        hits += [n for n in names if n == 'assistd.db' or n.startswith('file-')]\n"
        "print(hits)\n"
        f"open({str(data_dir / 'assistd.db')!r}).read()\n"
    )
    result = await sandbox.execute("thread_fs", code)
    lines = result.logs.splitlines()
    assert lines[0] == "False False"
    visible = set(eval(lines[1]))  # the sandbox's own root: system dirs and the Python installation
    assert {"usr", "tmp", "mnt", "proc", "dev", "etc", "run"} <= visible
    assert not {"var", "home", "srv", "boot"} & visible
    assert lines[2] == "[]"
    assert "FileNotFoundError" in result.logs
    assert SECRET not in result.logs
    # The filesystem is read-only outside /mnt/data and /tmp.
    readonly = await sandbox.execute("thread_fs", "open('/usr/evil', 'w')")
    assert "Read-only file system" in readonly.logs


async def test_there_is_no_network(sandbox: CodeSandbox) -> None:
    # PostgreSQL listens on the host's loopback; the sandbox has a loopback of its own, with nothing on it.
    code = (
        "import socket\n"
        "print(socket.if_nameindex())\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "s.connect(('127.0.0.1', 5432))\n"
    )
    result = await sandbox.execute("thread_net", code)
    assert result.logs.splitlines()[0] == "[(1, 'lo')]"
    assert "ConnectionRefusedError" in result.logs
    assert result.failed is True


async def test_a_fork_bomb_meets_the_process_limit(sandbox: CodeSandbox) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as error:\n"
        "    print('stopped after', n, error.errno)\n"
    )
    started = time.monotonic()
    result = await sandbox.execute("thread_forks", code)
    assert time.monotonic() - started < WALL_S
    words = result.logs.split()
    assert words[:2] == ["stopped", "after"]
    assert 0 < int(words[2]) < 48
    assert words[3] == "11"  # EAGAIN
    assert (await sandbox.execute("thread_forks", "print('still here')")).logs == "still here\n"
    assert (await sandbox.execute("thread_after_forks", "print(1)")).logs == "1\n"


async def test_a_memory_bomb_meets_the_memory_limit(sandbox: CodeSandbox) -> None:
    code = "kept = 'yes'\nblocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))\n"
    result = await sandbox.execute("thread_memory", code)
    assert result.failed is True
    assert "MemoryError" in result.logs
    after = await sandbox.execute("thread_memory", "del blocks\nprint(kept)")
    assert after.logs == "yes\n"
    assert (await sandbox.execute("thread_after_memory", "print(2)")).logs == "2\n"


async def test_an_endless_loop_is_interrupted_at_the_wall_clock_limit(sandbox: CodeSandbox) -> None:
    started = time.monotonic()
    result = await sandbox.execute("thread_loop", "x = 5\nwhile True:\n    pass\n")
    took = time.monotonic() - started
    assert WALL_S <= took < WALL_S + 2
    assert result.failed is True
    assert "KeyboardInterrupt" in result.logs
    assert "[Execution interrupted: it ran longer than the 2 seconds allowed per call.]" in result.logs
    assert (await sandbox.execute("thread_loop", "print(x)")).logs == "5\n"


async def test_code_that_ignores_interrupts_gets_a_new_kernel(sandbox: CodeSandbox) -> None:
    marker = "987.654"  # the host must not keep this sleep, which the old kernel started
    code = (
        "import signal, subprocess, time\n"
        "x = 5\n"
        f"subprocess.Popen(['sleep', '{marker}'])\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    result = await sandbox.execute("thread_stubborn", code)
    assert result.failed is True
    assert "did not stop when interrupted, so its kernel was restarted" in result.logs
    assert "Variables, imports and loaded data are gone; files in /mnt/data remain." in result.logs
    assert host_processes_with(marker) == []
    fresh = await sandbox.execute("thread_stubborn", "print('x' in globals())")
    assert (fresh.logs, fresh.failed) == ("False\n", False)


async def test_a_huge_file_meets_the_file_size_limit(sandbox: CodeSandbox) -> None:
    code = "with open('/mnt/data/huge.bin', 'wb') as f:\n    f.write(b'0' * (64 * 1024 * 1024))\n"
    result = await sandbox.execute("thread_huge", code)
    assert result.failed is True
    assert "File too large" in result.logs
    on_host = await sandbox.execute("thread_huge", "import os\nprint(os.path.getsize('/mnt/data/huge.bin'))")
    assert int(on_host.logs) <= 8 * 1024 * 1024
    # /tmp is a small tmpfs of the sandbox's own.
    tmp = await sandbox.execute("thread_huge", "open('/tmp/huge.bin', 'wb').write(b'0' * (64 * 1024 * 1024))")
    assert "File too large" in tmp.logs or "No space left on device" in tmp.logs


async def test_killing_the_sandbox_init_is_refused_and_killing_the_kernel_is_survived(
    sandbox: CodeSandbox,
) -> None:
    server = os.getpid()
    parent = await sandbox.execute(
        "thread_kill", "import os\ny = 1\nprint(os.getppid())\nos.kill(os.getppid(), 9)"
    )
    assert parent.logs.startswith("1\n")  # the kernel's parent is the namespace's init, not the server
    assert "PermissionError" in parent.logs
    init = await sandbox.execute("thread_kill", "os.kill(1, 9)")
    assert "PermissionError" in init.logs
    assert (await sandbox.execute("thread_kill", "print(y)")).logs == "1\n"

    itself = await sandbox.execute("thread_kill", "os.kill(os.getpid(), 9)")
    assert itself.failed is True
    assert "The kernel died while running this code" in itself.logs
    recovered = await sandbox.execute("thread_kill", "print('y' in globals())")
    assert (recovered.logs, recovered.failed) == ("False\n", False)
    assert os.getpid() == server
    assert (await sandbox.execute("thread_after_kill", "print(3)")).logs == "3\n"


# --- sessions and availability ----------------------------------------------------------------------


async def test_least_recently_used_kernels_are_evicted_and_idle_sessions_end(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, code_max_kernels=2, code_idle_seconds=1.0)
    small = CodeSandbox(settings)  # no background reaper until asked for below
    session_dirs = tmp_path / "sandbox"
    # What a server killed without closing leaves: its directory (lock free) and its sockets' directory.
    stale = session_dirs / "1-dead"
    (stale / "sessions" / "t-0").mkdir(parents=True)
    (stale / "lock").touch()
    stale_sockets = Path(tempfile.mkdtemp(prefix="assistd-sandbox-"))
    (stale / "runtime").write_text(str(stale_sockets))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    try:
        for session in ("a", "b"):
            assert (await small.execute(session, f"name = {session!r}")).logs == ""
        await small.execute("a", "print(name)")  # b is now the least recently used
        assert (await small.execute("c", "print('c')")).logs == "c\n"
        assert (await small.execute("a", "print(name)")).logs == "a\n"
        evicted = await small.execute("b", "print('name' in globals())")
        assert evicted.logs.startswith("[This session's kernel had been stopped to make room for others")
        assert "(at most 2 run at once)" in evicted.logs
        assert evicted.logs.endswith("False\n")

        assert gone(stale, stale_sockets)
        assert len(list(session_dirs.glob("*/sessions/*"))) == 3
        await asyncio.sleep(1.1)
        assert sorted(await small.reap_idle()) == ["a", "b", "c"]
        assert list(session_dirs.glob("*/sessions/*")) == []

        await small.execute("d", "_ = open('/mnt/data/f', 'w').write('x')")
        await small.end_session("d")
        assert list(session_dirs.glob("*/sessions/*")) == []

        await small.start()
        await small.execute("e", "print(1)")
        assert len(list(session_dirs.glob("*/sessions/*"))) == 1
        await asyncio.sleep(2.2)  # idle for 1 s, and the reaper looks every second
        assert list(session_dirs.glob("*/sessions/*")) == []
    finally:
        await small.close()
    assert list(session_dirs.iterdir()) == []


async def test_unavailable_without_bubblewrap_or_with_a_broken_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = CodeSandbox(settings_for(tmp_path / "a", code_python=tmp_path / "no-python"))
    reason = await broken.available()
    assert reason is not None
    assert "no-python" in reason
    with pytest.raises(SandboxUnavailable):
        await broken.execute("t", "print(1)")
    await broken.close()

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    missing = CodeSandbox(settings_for(tmp_path / "b"))
    reason = await missing.available()
    assert reason is not None
    assert "bubblewrap is not installed" in reason
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        await missing.execute("t", "print(1)")
    await missing.close()


async def test_unsafe_mode_runs_without_a_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")  # no bwrap needed
    async with CodeSandbox(settings_for(tmp_path, code_unsafe_no_sandbox=True)) as unsafe:
        assert await unsafe.available() is None
        result = await unsafe.execute(
            "t",
            "print(open('/mnt/data/in.txt').read())\n_ = open('/mnt/data/out.txt', 'w').write('b')",
            [InputFile("in.txt", b"a")],
        )
        assert (result.logs, result.files) == ("a\n", [OutputFile("out.txt", b"b")])


def test_a_data_dir_inside_a_mounted_directory_is_masked(tmp_path: Path) -> None:
    def arguments(data_dir: Path) -> list[str]:
        layout = bwrap_layout.Layout(
            python_dirs=(tmp_path / "venv",),
            hidden=data_dir,
            etc_dir=tmp_path / "etc",
            session_dir=tmp_path / "session",
            runtime_dir=tmp_path / "run",
            launcher=tmp_path / "launch.py",
            tmp_bytes=1024,
        )
        return bwrap_layout.command("bwrap", layout, info_fd=None, block_fd=None)

    inside = arguments(tmp_path / "venv" / "data")
    assert inside[inside.index(str(tmp_path / "venv" / "data")) - 1] == "--tmpfs"
    outside = arguments(tmp_path / "data")
    assert str(tmp_path / "data") not in outside

"""The bubblewrap command line of one kernel: what the sandbox sees, and as whom it runs.

Inside, code sees the system's ``/usr`` (and the ``/bin``, ``/lib`` links into it), a few files of
``/etc``, the kernel's Python installation and assistd's launch.py, all read-only; a fresh ``/tmp``;
``/mnt/data`` (the session's directory, writable); ``/run/kernel`` (the kernel's sockets); its own
``/proc`` and a minimal ``/dev``. Nothing else of the host: not the data dir, not the rest of the
server's code, not ``/home`` or ``/root``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The uid and gid code runs as, as seen inside the sandbox (named "sandbox" in its /etc/passwd).
SANDBOX_ID = 1000
MNT_DATA = PurePosixPath("/mnt/data")
RUN_DIR = PurePosixPath("/run/kernel")
LAUNCHER = PurePosixPath("/run/assistd/launch.py")

# Top-level entries that are links into /usr on merged-/usr systems and directories elsewhere.
_SYSTEM_ROOTS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Enough of /etc for the dynamic loader, time zones, fonts (matplotlib runs fc-list) and mimetypes;
# nothing with secrets or site configuration.
_ETC_FILES = ("alternatives", "fonts", "ld.so.cache", "localtime", "mime.types")


@dataclass(frozen=True)
class Layout:
    """The host paths one kernel's sandbox is made of."""

    python_dirs: tuple[Path, ...]  # the kernel's Python installation(s), mounted read-only
    hidden: Path  # the data dir: masked if it happens to lie inside a mounted directory
    etc_dir: Path  # passwd and group of the sandbox
    session_dir: Path  # becomes /mnt/data
    runtime_dir: Path  # becomes /run/kernel
    launcher: Path  # launch.py, the kernel process's first code
    tmp_bytes: int  # the size of /tmp and /dev/shm


def command(bwrap: str, layout: Layout, *, info_fd: int | None, block_fd: int | None) -> list[str]:
    """The bwrap arguments up to and including ``--``.

    With ``info_fd`` and ``block_fd`` (assistd runs as root), bwrap creates the user namespace and waits
    until ``write_id_maps`` has mapped it; otherwise bwrap maps the caller's own uid to SANDBOX_ID.
    """
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    args += ["--hostname", "sandbox"]
    if info_fd is not None and block_fd is not None:
        args += ["--info-fd", str(info_fd), "--userns-block-fd", str(block_fd)]
        # For the launcher, which sets user.max_user_namespaces (bwrap's --disable-userns does not work
        # with --userns-block-fd) before it drops every capability with root.
        args += ["--cap-add", "CAP_SYS_RESOURCE"]
    else:
        sid = str(SANDBOX_ID)
        args += ["--uid", sid, "--gid", sid, "--disable-userns", "--cap-drop", "ALL"]

    read_only: dict[PurePosixPath, Path] = {PurePosixPath("/usr"): Path("/usr")}
    links: list[tuple[str, PurePosixPath]] = []
    for name in _SYSTEM_ROOTS:
        host = Path("/") / name
        if host.is_symlink():
            links.append((str(host.readlink()), PurePosixPath("/") / name))
        elif host.is_dir():
            read_only[PurePosixPath(host)] = host
    for name in _ETC_FILES:
        host = Path("/etc") / name
        if host.exists():
            read_only[PurePosixPath(host)] = host
    for directory in layout.python_dirs:
        read_only[PurePosixPath(directory)] = directory
    read_only = _outermost(read_only)
    read_only[PurePosixPath("/etc/passwd")] = layout.etc_dir / "passwd"
    read_only[PurePosixPath("/etc/group")] = layout.etc_dir / "group"
    read_only[LAUNCHER] = layout.launcher
    writable = {MNT_DATA: layout.session_dir, RUN_DIR: layout.runtime_dir}

    # The kernel's own /proc, /dev and /tmp first: a Python installed under /tmp is mounted onto them.
    size = str(layout.tmp_bytes)
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    special = {PurePosixPath(path) for path in ("/", "/proc", "/dev", "/dev/shm", "/tmp")}

    # bwrap creates missing parents of a mount point with the mode of the host's directory, so /root
    # would be 0700 and the sandbox user could not reach a Python installed under it.
    mounted = [*read_only, *writable]
    parents = sorted(
        {parent for dest in mounted for parent in dest.parents} - set(mounted) - special,
        key=lambda path: len(path.parts),
    )
    for parent in parents:
        if not any(parent.is_relative_to(dest) for dest in read_only):
            args += ["--perms", "0755", "--dir", str(parent)]
    for dest in sorted(read_only, key=lambda path: len(path.parts)):
        args += ["--ro-bind", str(read_only[dest]), str(dest)]
    for target, dest in links:
        args += ["--symlink", target, str(dest)]
    hidden = PurePosixPath(layout.hidden.resolve())
    if any(hidden.is_relative_to(dest) for dest in read_only):
        args += ["--tmpfs", str(hidden)]
    for dest, host in writable.items():
        args += ["--bind", str(host), str(dest)]
    args += ["--chdir", str(MNT_DATA), "--"]
    return args


def write_id_maps(pid: int, host_id: int) -> None:
    """Map root to root (for bwrap's own setup) and SANDBOX_ID to ``host_id`` in ``pid``'s namespace.

    Root stays mapped only for bwrap and the launcher, which switches to SANDBOX_ID before any code
    runs: bwrap sets no_new_privs and mounts everything nosuid, so nothing can become root again. Code
    thus runs as an unprivileged host uid, which is what makes RLIMIT_NPROC hold (the kernel exempts
    the host's root from it).
    """
    mapping = f"0 0 1\n{SANDBOX_ID} {host_id} 1\n"
    Path(f"/proc/{pid}/uid_map").write_text(mapping)
    Path(f"/proc/{pid}/gid_map").write_text(mapping)


def etc_files(directory: Path) -> None:
    """The sandbox's passwd and group, so that tools asking who they are get an answer."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\nsandbox:x:{SANDBOX_ID}:{SANDBOX_ID}:sandbox:/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (directory / "group").write_text(f"root:x:0:\nsandbox:x:{SANDBOX_ID}:\nnogroup:x:65534:\n")


def _outermost(mounts: dict[PurePosixPath, Path]) -> dict[PurePosixPath, Path]:
    # A directory inside another mounted one (a venv under /usr, say) is visible already.
    return {
        dest: host
        for dest, host in mounts.items()
        if not any(dest != other and dest.is_relative_to(other) for other in mounts)
    }

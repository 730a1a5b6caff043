"""The first code a kernel's process runs: it drops privileges, sets the limits, then execs the kernel.

The server does not import this file: it is mounted alone into the sandbox (nothing else of assistd
is) and run as a script, so it imports nothing but the standard library. It takes one argument, a
JSON object:

- ``drop_to``: a uid/gid to switch to, or null. Set when bubblewrap ran as root and this process is
  root of a user namespace that assistd mapped; the switch also clears every capability.
- ``limits``: ``{"RLIMIT_AS": bytes, ...}``; soft and hard limits are both set, so code cannot raise them.
- ``argv``: the kernel's command line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path


def main(arguments: list[str]) -> None:
    config = json.loads(arguments[0])
    drop_to = config["drop_to"]
    if drop_to is not None:
        # Without this, code could create a nested user namespace and be root in it: that is no way out,
        # but it opens much kernel surface (mounts, netfilter, ...) that code has no use for.
        Path("/proc/sys/user/max_user_namespaces").write_text("0")
        os.setgroups([])
        os.setresgid(drop_to, drop_to, drop_to)
        os.setresuid(drop_to, drop_to, drop_to)
        if os.getresuid() != (drop_to, drop_to, drop_to):
            sys.exit("could not drop privileges")
    for name, value in config["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    # Nothing the launcher inherited belongs to the kernel (bubblewrap leaves a pipe open).
    os.closerange(3, 1 << 16)
    argv = config["argv"]
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

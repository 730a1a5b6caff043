"""The official ``openai`` Node SDK against a live server: tests/clients/node/smoke.mjs runs the tutorial
flow, a streamed run and function calls (polled and streamed), checking every reply of the scripted
model, with two lines of the SDK (see tests/clients/node/package.json)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import Server

NODE_PROJECT = Path(__file__).parent / "clients" / "node"
NPM_TIMEOUT_S = 300
SMOKE_TIMEOUT_S = 60


def _installed_stamp() -> Path:
    """A file in node_modules named after the lockfile's hash: there, node_modules holds what the
    lockfile pins, and ``npm ci`` (which starts by deleting node_modules) need not run again."""
    digest = hashlib.sha256((NODE_PROJECT / "package-lock.json").read_bytes()).hexdigest()[:16]
    return NODE_PROJECT / "node_modules" / f".installed-{digest}"


@pytest.fixture(scope="session")
def node_project() -> Path:
    """tests/clients/node with its node_modules installed from the lockfile (``npm ci``), once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node (20 or newer) and npm are needed for the Node SDK test")
    # Two test processes may start this at once (make test runs passes side by side): the first
    # installs, the second waits and finds the stamp. The lockfile itself is the lock: flock is
    # advisory, npm does not take it.
    with (NODE_PROJECT / "package-lock.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = _installed_stamp()
        if not stamp.exists():
            result = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=NODE_PROJECT,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
            stamp.touch()
    return NODE_PROJECT


@pytest.mark.backend("sqlite")  # the client's side is under test; the store is the same for it
@pytest.mark.parametrize(
    ("module", "version"),
    [
        ("openai", "7.60.0"),  # the newest release
        ("openai-v6", "6.49.0"),  # the last release that declares support for Node 20
    ],
)
def test_node_sdk_tutorial_stream_and_function_calls(
    node_project: Path, server: Server, module: str, version: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"OPENAI_BASE_URL": f"{server.url}/v1", "OPENAI_API_KEY": "sk-test"}
    result = subprocess.run(
        ["node", "smoke.mjs", module],
        cwd=node_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{result.stderr}\n{result.stdout}\nserver log:\n{server.log()[-4000:]}"

    # The script checked each step itself; its summary shows that it ran them all, on the right SDK.
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    stream = seen.pop("stream")
    assert seen == {
        "sdk": version,
        "tutorial": "You said: Solve 3x + 11 = 14.",
        "function_polled": "get_weather returned sunny, 21 C",
        "function_streamed": "get_weather returned snow",
    }
    # The scripted model streams one token per delta (words and punctuation marks), and the stream
    # has the run's, the step's and the message's events around them.
    assert (stream["text"], stream["deltas"]) == ("You said: Stream this, please.", 8)
    assert stream["events"] > stream["deltas"] + 5

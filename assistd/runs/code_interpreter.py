"""The code_interpreter tool of runs: the function the model sees, running its code, and what goes back.

Models call code_interpreter as a function, ``code_interpreter({"code": ...})``; the run executes it
itself in the thread's sandboxed kernel (``assistd.sandbox``: state lasts across calls and runs of the
thread) and records it as OpenAI did, a ``code_interpreter`` tool call with ``input`` and ``outputs``
(``logs``, and ``image`` with the ``file_id`` of each figure). The files of the assistant's and the
thread's ``tool_resources.code_interpreter`` are in ``/mnt/data`` under their file names; files the code
writes there become files of purpose ``assistants_output``, which the answer links to as
``sandbox:/mnt/data/NAME`` (``runs.annotations`` makes those links ``file_path`` annotations).
Code that raises is an output like any other, never a failed run.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistd.backends.base import BackendError
from assistd.runs.resources import resource_ids
from assistd.runs.streamed_json import partial_string
from assistd.sandbox import CodeSandbox, InputFile, SandboxUnavailable
from assistd.store import tables
from assistd.store.blobs import BlobStore, LocalBlobStore, TooLarge
from assistd.store.database import Database
from assistd.store.files import save_file
from assistd.types import Run

NAME = "code_interpreter"
OUTPUT_PURPOSE = "assistants_output"
# What the model reads back of long logs: their end, where results and errors are.
MODEL_LOG_CHARS = 4000
# The stored call's own key: the files the call wrote, [sandbox path, file id], for file_path
# annotations; never sent to clients (``runs.step_view``).
FILES_KEY = "files"

FUNCTION = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Run Python code in a stateful Jupyter kernel: variables, imports and files persist between "
            "calls in this conversation. numpy, pandas and matplotlib are installed; there is no network. "
            "The user's files are in /mnt/data. Print what you need to see. Figures shown with "
            "matplotlib are shown to the user. To give the user a file, save it in /mnt/data and link "
            "it in your answer as sandbox:/mnt/data/<name>."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}


def code_of(arguments: str) -> str:
    """The code in the model's arguments; a model that sent bare code instead of JSON meant it as the
    code."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return partial_string(arguments, "code") or arguments
    if isinstance(parsed, dict):
        return str(parsed.get("code") or "")
    return arguments


async def input_files(database: Database, blobs: BlobStore, project_id: str, run: Run) -> list[InputFile]:
    """The files of the assistant's and the thread's ``tool_resources.code_interpreter``, named by
    their file names (a name two files share gets the file id added). Each is put in /mnt/data only
    when missing there: code owns the files it was given, and its changes stay."""
    async with database.read() as conn:
        file_ids = await resource_ids(conn, project_id, run, NAME, "file_ids")
        if not file_ids:
            return []
        files = tables.files
        found = await conn.execute(
            select(files.c.id, files.c.filename).where(
                files.c.project_id == project_id, files.c.id.in_(file_ids)
            )
        )
        names = {row.id: row.filename for row in found}
    placed: list[InputFile] = []
    taken: set[str] = set()
    for file_id in file_ids:
        if file_id not in names:
            continue  # deleted since it was attached
        name = _plain_name(names[file_id], file_id)
        if name in taken:
            name = _plain_name(names[file_id], file_id, suffix=file_id)
        taken.add(name)
        placed.append(InputFile(name, await _content(blobs, file_id), replace=False))
    return placed


def _plain_name(filename: str, file_id: str, *, suffix: str = "") -> str:
    """A name for /mnt/data: the file name without folders or NUL, with ``suffix`` before its
    extension, cut to the 255 bytes a file name may have (the extension kept); the file id if nothing
    is left."""
    name = posixpath.basename(filename.replace("\\", "/").replace("\0", "")).strip()
    if name in ("", ".", ".."):
        name = file_id
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode()) > 16:
        stem, dot, extension = name, "", ""
    tail = (f"-{suffix}" if suffix else "") + dot + extension
    room = 255 - len(tail.encode())
    stem = stem.encode()[:room].decode(errors="ignore")
    return stem + tail


async def _content(blobs: BlobStore, file_id: str) -> bytes | Path:
    """A local blob is copied from its path, without reading it into memory; others are read."""
    if isinstance(blobs, LocalBlobStore):
        return blobs.path(file_id)
    return b"".join([chunk async for chunk in blobs.read(file_id)])


@dataclass(frozen=True, slots=True)
class Outcome:
    """One call's record for its step, and what the model reads back."""

    details: dict[str, Any]  # the tool call as its step stores it
    outputs: list[dict[str, Any]]  # the call's outputs (also sent as a step delta)
    for_model: str


async def run_code(
    sandbox: CodeSandbox,
    database: Database,
    blobs: BlobStore,
    project_id: str,
    run: Run,
    call_id: str,
    code: str,
    *,
    max_file_bytes: int,
) -> Outcome:
    inputs = await input_files(database, blobs, project_id, run)
    try:
        execution = await sandbox.execute(run.thread_id, code, inputs)
    except SandboxUnavailable as unavailable:
        raise BackendError(f"code_interpreter is unavailable on this server: {unavailable}") from None

    dropped: list[str] = []

    async def save(name: str, content: bytes) -> str | None:
        """The id of a new output file; None for one over the size limit (the logs then say so)."""
        try:
            saved = await save_file(
                database,
                blobs,
                project_id,
                io.BytesIO(content),
                filename=name,
                purpose=OUTPUT_PURPOSE,
                limit=max_file_bytes,
            )
        except TooLarge:
            dropped.append(name)
            return None
        return saved.id

    image_ids = [
        await save(f"image-{call_id}-{number}.png", image) for number, image in enumerate(execution.images)
    ]
    written: list[list[str]] = []  # [sandbox path, file id]
    for file in execution.files:
        if (file_id := await save(posixpath.basename(file.name), file.content)) is not None:
            written.append([file.sandbox_path, file_id])
    logs = execution.logs
    if dropped:
        logs += f"[not kept, larger than {max_file_bytes} bytes: {', '.join(dropped)}]\n"
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": logs}] if logs else []
    outputs += [{"type": "image", "image": {"file_id": image_id}} for image_id in image_ids if image_id]
    call: dict[str, Any] = {"input": code, "outputs": outputs, FILES_KEY: written}
    return Outcome({"id": call_id, "type": NAME, NAME: call}, outputs, model_output(call))


def model_output(call: dict[str, Any]) -> str:
    """What the model reads back from a call (``call``: the ``code_interpreter`` object of a stored
    tool call)."""
    outputs = call.get("outputs") or []
    logs = "".join(output["logs"] for output in outputs if output["type"] == "logs")
    images = sum(1 for output in outputs if output["type"] == "image")
    parts = [logs if len(logs) <= MODEL_LOG_CHARS else "[...]\n" + logs[-MODEL_LOG_CHARS:]]
    if not logs:
        parts = ["(no output)"]
    if images:
        parts.append(f"[{images} image{'s' if images > 1 else ''} shown to the user]")
    parts += [f"[file written: sandbox:{path}]" for path, _ in call.get(FILES_KEY) or []]
    return "\n".join(parts)


def written_files(calls: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The files the run's code_interpreter calls wrote: file id by sandbox path (the latest wins)."""
    return {path: file_id for call in calls for path, file_id in call[NAME].get(FILES_KEY) or []}


def images(calls: Sequence[dict[str, Any]]) -> list[str]:
    """The file ids of the images the run's code_interpreter calls showed, in order."""
    return [
        output["image"]["file_id"]
        for call in calls
        for output in call[NAME].get("outputs") or []
        if output["type"] == "image"
    ]

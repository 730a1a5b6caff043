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
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistd.backends.base import BackendError
from assistd.runs.streamed_json import partial_string
from assistd.sandbox import CodeSandbox, InputFile
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
    """The code in the model's arguments (a model that sent bare code instead of JSON meant it as the
    code)."""
    decoded = partial_string(arguments, "code")
    return decoded if decoded or '"code"' in arguments else arguments


async def input_files(database: Database, blobs: BlobStore, project_id: str, run: Run) -> list[InputFile]:
    """The files of the assistant's and the thread's ``tool_resources.code_interpreter``, named by
    their file names (a name two files share gets the file id added)."""
    file_ids: list[str] = []
    async with database.read() as conn:
        for table, row_id in ((tables.assistants, run.assistant_id), (tables.threads, run.thread_id)):
            resources = await conn.scalar(
                select(table.c.tool_resources).where(table.c.project_id == project_id, table.c.id == row_id)
            )
            ids = ((resources or {}).get(NAME) or {}).get("file_ids") or []
            file_ids += [file_id for file_id in ids if file_id not in file_ids]
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
        name = _plain_name(names[file_id]) or file_id
        if name in taken:
            stem, dot, suffix = name.rpartition(".")
            name = f"{stem}-{file_id}.{suffix}" if dot and stem else f"{name}-{file_id}"
        taken.add(name)
        placed.append(InputFile(name, await _content(blobs, file_id)))
    return placed


def _plain_name(filename: str) -> str:
    name = posixpath.basename(filename.replace("\\", "/")).strip()
    return "" if name in ("", ".", "..") else name


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
    unavailable = await sandbox.available()
    if unavailable is not None:
        raise BackendError(f"code_interpreter is unavailable on this server: {unavailable}")
    inputs = await input_files(database, blobs, project_id, run)
    execution = await sandbox.execute(run.thread_id, code, inputs)

    async def save(name: str, content: bytes) -> str | None:
        """The id of a new output file; None for one over the size limit (the logs say so)."""
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
            return None
        return saved.id

    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": execution.logs}] if execution.logs else []
    for number, image in enumerate(execution.images):
        if (image_id := await save(f"image-{call_id}-{number}.png", image)) is not None:
            outputs.append({"type": "image", "image": {"file_id": image_id}})
    written: list[list[str]] = []  # [sandbox path, file id]
    for file in execution.files:
        if (file_id := await save(posixpath.basename(file.name), file.content)) is not None:
            written.append([file.sandbox_path, file_id])
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

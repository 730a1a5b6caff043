"""Where file contents live: an S3-compatible bucket, the PostgreSQL database, and settings that cannot
work.

The S3 half runs a server with ``ASSISTD_BLOB_STORE=s3`` against moto's S3 server (a local process,
started with the server's interpreter, which has moto with the dev extras) and looks into the bucket
over plain HTTP: moto's server accepts unsigned requests. The PostgreSQL half looks into the test
database's ``file_blobs`` table directly. Files go in and out through the SDK only.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types import FileObject

from tests.conftest import make_client
from tests.envelope import sdk_error
from tests.harness import (
    SERVER_PYTHON,
    Server,
    create_pg_database,
    drop_pg_database,
    free_port,
    postgres_enabled,
)
from tests.run_support import only_assistant_reply, wait_for_run

TIMEOUT = 30.0  # seconds: an answer that takes longer than this is a hang
MIB = 1024 * 1024
S3_PART = 8 * MIB  # the parts of the server's multipart uploads
S3_LIMIT = S3_PART + MIB  # ASSISTD_MAX_FILE_BYTES of the S3 server: larger than one part
PG_CHUNK = MIB  # the rows of file_blobs hold this much each
PG_LIMIT = 3 * MIB + 100  # ASSISTD_MAX_FILE_BYTES of the PostgreSQL server: four rows
BUCKET = "assistd-files"
PREFIX = "tenant-a/files/"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def upload(sdk: openai.OpenAI, filename: str, data: bytes) -> FileObject:
    return sdk.files.create(file=(filename, data), purpose="assistants")


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within 30 s")


# -- S3 -----------------------------------------------------------------------------------------------


class Bucket:
    """A bucket of moto's S3 server, looked into over plain HTTP."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint
        self.name = name

    def _get(self, **params: str) -> ET.Element:
        response = httpx.get(f"{self.endpoint}/{self.name}", params=params, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return ET.fromstring(response.content)

    def object_keys(self) -> set[str]:
        listing = self._get(**{"list-type": "2"})
        return {key.text or "" for key in listing.iter(f"{S3_NS}Key")}

    def object(self, key: str) -> bytes:
        response = httpx.get(f"{self.endpoint}/{self.name}/{key}", timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.content

    def open_uploads(self) -> list[str]:
        """The keys of multipart uploads begun and neither completed nor aborted."""
        listing = self._get(uploads="")
        return [
            key.text or "" for upload in listing.iter(f"{S3_NS}Upload") for key in upload.iter(f"{S3_NS}Key")
        ]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bucket]:
    """moto's S3 server with an empty bucket, for the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [SERVER_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(endpoint, process, "moto_server")
        assert httpx.put(f"{endpoint}/{BUCKET}", timeout=TIMEOUT).status_code == 200
        yield Bucket(endpoint, BUCKET)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def s3_server(s3: Bucket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server (SQLite) whose file contents live in the bucket, under a prefix."""
    data_dir = tmp_path_factory.mktemp("assistd-s3")
    nowhere = str(data_dir / "no-aws-config")
    env = {
        "ASSISTD_BLOB_STORE": "s3",
        "ASSISTD_S3_BUCKET": s3.name,
        "ASSISTD_S3_ENDPOINT_URL": s3.endpoint,
        "ASSISTD_S3_PREFIX": PREFIX,
        "ASSISTD_S3_REGION": "us-east-1",
        "ASSISTD_MAX_FILE_BYTES": str(S3_LIMIT),
        # Dummy credentials, and none of this machine's AWS configuration.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    server = Server(data_dir=data_dir, env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_sdk(s3_server: Server) -> Iterator[openai.OpenAI]:
    with make_client(s3_server, timeout=TIMEOUT) as sdk:
        yield sdk


def test_s3_files_round_trip_and_are_deleted_from_the_bucket(
    s3: Bucket, s3_server: Server, s3_sdk: openai.OpenAI
) -> None:
    small = b"hello, bucket\n"
    big = random_bytes(S3_PART + 12345, seed=1)  # two parts of a multipart upload
    empty = b""
    files = {
        name: upload(s3_sdk, name, data) for name, data in (("a.txt", small), ("b.bin", big), ("e", empty))
    }
    for name, data in (("a.txt", small), ("b.bin", big), ("e", empty)):
        assert files[name].bytes == len(data)
        assert s3_sdk.files.content(files[name].id).read() == data

    # In the bucket under the prefix, by file id, exactly as uploaded; nothing on the server's disk.
    keys = s3.object_keys()
    assert {f"{PREFIX}{file.id}" for file in files.values()} <= keys
    assert all(key.startswith(PREFIX) for key in keys)
    assert s3.object(f"{PREFIX}{files['b.bin'].id}") == big
    assert not (s3_server.data_dir / "files").exists()

    assert s3_sdk.files.delete(files["b.bin"].id).deleted is True
    assert f"{PREFIX}{files['b.bin'].id}" not in s3.object_keys()
    sdk_error(lambda: s3_sdk.files.content(files["b.bin"].id), 404)
    assert s3_sdk.files.content(files["a.txt"].id).read() == small


def test_s3_upload_over_the_limit_leaves_nothing(s3: Bucket, s3_sdk: openai.OpenAI) -> None:
    before = s3.object_keys()
    # Past the limit after the first part went up: the multipart upload is aborted.
    sdk_error(lambda: upload(s3_sdk, "over.bin", random_bytes(S3_LIMIT + 1000, seed=2)), 413)
    assert s3.object_keys() == before
    assert s3.open_uploads() == []
    # Exactly the limit is accepted.
    data = random_bytes(S3_LIMIT, seed=3)
    file = upload(s3_sdk, "limit.bin", data)
    assert s3_sdk.files.content(file.id).read() == data
    assert s3.open_uploads() == []
    s3_sdk.files.delete(file.id)


def test_s3_files_are_indexed_and_searched(s3: Bucket, s3_sdk: openai.OpenAI) -> None:
    store = s3_sdk.vector_stores.create(name="from the bucket")
    text = b"The lighthouse keeper logs the fog horn at dawn. Ferries to Quillon Island leave at noon.\n"
    batch = s3_sdk.vector_stores.file_batches.upload_and_poll(
        store.id, files=[("ferries.txt", text)], poll_interval_ms=50
    )
    assert (batch.status, batch.file_counts.completed) == ("completed", 1)
    [stored] = list(s3_sdk.vector_stores.files.list(store.id))
    assert f"{PREFIX}{stored.id}" in s3.object_keys()
    results = s3_sdk.vector_stores.search(store.id, query="When do ferries leave for Quillon Island?")
    assert results.data, "nothing found"
    assert results.data[0].file_id == stored.id
    assert "Quillon Island" in results.data[0].content[0].text


# -- PostgreSQL ---------------------------------------------------------------------------------------


def blob_rows(database_url: str, key: str | None = None) -> list[Any]:
    """The (key, part, size) of the rows of file_blobs, of ``key`` or all."""
    return asyncio.run(_blob_rows(database_url, key))


async def _blob_rows(database_url: str, key: str | None) -> list[Any]:
    asyncpg = pytest.importorskip("asyncpg")
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        query = "SELECT key, part, length(data) AS size FROM file_blobs"
        if key is None:
            return list(await conn.fetch(query + " ORDER BY key, part"))
        return list(await conn.fetch(query + " WHERE key = $1 ORDER BY part", key))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a fresh PostgreSQL database, with the default blob store."""
    if not postgres_enabled():
        pytest.skip("ASSISTD_TEST_PG=off")
    database_url = create_pg_database()
    server = Server(
        data_dir=tmp_path_factory.mktemp("assistd-pg"),
        env={"ASSISTD_DATABASE_URL": database_url, "ASSISTD_MAX_FILE_BYTES": str(PG_LIMIT)},
    )
    try:
        yield server.start()
    finally:
        server.stop()
        drop_pg_database(database_url)


def test_postgres_keeps_files_in_the_database(pg_server: Server) -> None:
    database_url = pg_server.env["ASSISTD_DATABASE_URL"]
    with make_client(pg_server, timeout=TIMEOUT) as sdk:
        # Over the limit, after three rows were written: all rolled back.
        before = blob_rows(database_url)
        sdk_error(lambda: upload(sdk, "over.bin", random_bytes(PG_LIMIT + 1000, seed=4)), 413)
        assert blob_rows(database_url) == before

        data = random_bytes(3 * MIB + 50, seed=5)
        file = upload(sdk, "several-chunks.bin", data)
        assert sdk.files.content(file.id).read() == data
        rows = blob_rows(database_url, file.id)
        assert [(row["part"], row["size"]) for row in rows] == [
            (0, PG_CHUNK),
            (1, PG_CHUNK),
            (2, PG_CHUNK),
            (3, 50),
        ]

        empty = upload(sdk, "empty.txt", b"")
        assert sdk.files.content(empty.id).read() == b""
        assert not (pg_server.data_dir / "files").exists()

        sdk.files.delete(file.id)
        assert blob_rows(database_url, file.id) == []
        sdk_error(lambda: sdk.files.content(file.id), 404)
        assert [row["key"] for row in blob_rows(database_url, empty.id)] == [empty.id]
        assert file.id not in {row["key"] for row in blob_rows(database_url)}


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap (bubblewrap) is not installed")
def test_postgres_files_reach_code_interpreter_and_back(pg_server: Server) -> None:
    """A file given to code is read from the database into the sandbox; the file code writes is
    stored there."""
    database_url = pg_server.env["ASSISTD_DATABASE_URL"]
    code = (
        "numbers = open('/mnt/data/numbers.txt').read().split()\n"
        "open('/mnt/data/total.txt', 'w').write(str(sum(map(int, numbers))))\n"
        "print(len(numbers))"
    )
    numbers = "".join(f"{n}\n" for n in range(200_000)).encode()  # 1.3 MB: two rows
    with make_client(pg_server, timeout=TIMEOUT) as sdk:
        given = upload(sdk, "numbers.txt", numbers)
        assistant = sdk.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        thread = sdk.beta.threads.create(
            messages=[{"role": "user", "content": f"/code\n```python\n{code}\n```"}],
            tool_resources={"code_interpreter": {"file_ids": [given.id]}},
        )
        run = sdk.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        final = wait_for_run(sdk, thread.id, run.id, timeout=TIMEOUT)
        assert final.status == "completed", final.last_error
        reply = only_assistant_reply(sdk, thread.id, run.id)
        [part] = [part for part in reply.content if part.type == "text"]
        [annotation] = part.text.annotations
        assert annotation.type == "file_path"
        written = annotation.file_path.file_id
        assert sdk.files.content(written).read() == str(sum(range(200_000))).encode()
        assert [row["part"] for row in blob_rows(database_url, given.id)] == [0, 1]
        assert [row["part"] for row in blob_rows(database_url, written)] == [0]


# -- settings that cannot work ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"ASSISTD_BLOB_STORE": "s3"}, "ASSISTD_S3_BUCKET"),
        ({"ASSISTD_BLOB_STORE": "postgres"}, "ASSISTD_DATABASE_URL"),
    ],
    ids=["s3-without-bucket", "postgres-on-sqlite"],
)
def test_a_blob_store_that_cannot_work_stops_the_start(
    settings: dict[str, str], named: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")},
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_DEFAULT_MODEL": "scripted",
        **settings,
    }
    result = subprocess.run(
        [SERVER_PYTHON, "-m", "assistd", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "ASSISTD_BLOB_STORE" in result.stderr

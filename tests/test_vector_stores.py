"""Vector stores: stores, the files in them, file batches, and search, through the SDK and raw HTTP.

Indexing happens in the background, so every wait here is bounded: a poll with a deadline, or an SDK
poll helper (which polls forever) under ``time_limit``. Documents are small and about clearly different
things (a recipe, a football match, a fictional planet), so that a question whose answer is in one of them
must find that one first. Tests on the shared server only look at the stores and files they made.
"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import openai
import pytest
from openai.types import FileObject, StaticFileChunkingStrategyObjectParam, VectorStore
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch

from tests.conftest import make_client
from tests.envelope import Param, assert_error, sdk_error
from tests.harness import Server
from tests.openapi import assert_schema
from tests.run_support import time_limit

T = TypeVar("T")

TIMEOUT = 30.0  # seconds: an answer that takes longer than this is a hang
WAIT = 60.0  # seconds: indexing that takes longer than this is stuck
POLL_MS = 50  # the poll interval given to the SDK's poll helpers
SEARCH_BUDGET = 5.0  # seconds: a search of a small store that takes longer is stuck behind something
AUTO_CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
# ... and ``expires_after`` when the store has one: the spec makes it optional and not nullable.
STORE_KEYS = {
    "id",
    "object",
    "created_at",
    "name",
    "usage_bytes",
    "file_counts",
    "status",
    "expires_at",
    "last_active_at",
    "metadata",
}
STORE_FILE_KEYS = {
    "id",
    "object",
    "usage_bytes",
    "created_at",
    "vector_store_id",
    "status",
    "last_error",
    "chunking_strategy",
    "attributes",
}
BATCH_KEYS = {"id", "object", "created_at", "vector_store_id", "status", "file_counts"}


# -- documents ---------------------------------------------------------------------------------------


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is ``lines``, written by hand (no PDF library in the SDK 1.x venv)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    operators = [
        "BT",
        "/F1 12 Tf",
        "14 TL",
        "72 740 Td",
        *(f"({escape(line)}) Tj T*" for line in lines),
        "ET",
    ]
    stream = "\n".join(operators).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


RECIPE_TEXT = (
    "Lemon pancakes for a Sunday breakfast.\n"
    "Whisk two eggs with a cup of milk, then fold in flour, a spoon of sugar and the zest of one lemon.\n"
    "Fry each pancake in butter for two minutes per side and serve it warm with maple syrup.\n"
)
MATCH_TEXT = (
    "# Match report\n\n"
    "Riverside United beat Harbour City three goals to one in the football league on Saturday.\n"
    "Their striker scored twice after half-time and the goalkeeper saved a penalty in the last minute.\n"
)
PLANET_LINES = [
    "Field notes on the planet Zorblax.",
    "Zorblax has three moons named Pim, Quorra and Tessel.",
    "Its thin atmosphere smells of copper, and a night there lasts nine days.",
]
PLANET_HTML = (
    "<!DOCTYPE html><html><head><title>Zorblax</title><style>p { color: red; }</style></head><body>"
    "<h1>Field notes on the planet Zorblax</h1>"
    "<p>Zorblax has three moons named <b>Pim</b>, <b>Quorra</b> and <b>Tessel</b>.</p>"
    "<script>var hidden = 'scriptword';</script></body></html>"
)
RECIPE = ("lemon-pancakes.txt", RECIPE_TEXT.encode())
MATCH = ("match-report.md", MATCH_TEXT.encode())
PLANET_PDF = ("zorblax.pdf", make_pdf(PLANET_LINES))
MOONS_QUESTION = "What are the names of the moons of Zorblax?"
MOONS_ANSWER = "Pim, Quorra and Tessel"

KIMCHI_KO = (
    "김치찌개 만드는 법: 잘 익은 김치와 돼지고기를 냄비에 넣고 볶은 다음, 물을 붓고 두부와 대파를 넣어 "
    "이십 분 동안 끓인다.\n"
)
SUBWAY_KO = "서울 지하철 2호선은 도심을 한 바퀴 도는 순환선이며, 출퇴근 시간에는 매우 붐빈다.\n"

# Every numbered fact is different, so that chunks of it are different too: about 700 tokens, so that
# chunks of 100 tokens starting every 50 make more than the 10 results a search gives by default.
FACTS_TEXT = "".join(
    f"Fact {i}: the lighthouse keeper counted {i * 7} gulls and {i + 3} boats on day {i}.\n"
    for i in range(1, 37)
)
SMALL_CHUNKS: StaticFileChunkingStrategyObjectParam = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
}

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND"
    b"\xaeB`\x82"
)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "Zorblax has three moons.")
    return buffer.getvalue()


# -- helpers -----------------------------------------------------------------------------------------


class Response(Protocol):
    """An HTTP response: httpx's, or httpx2's, which the 3.x SDK's errors carry."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def counts(in_progress: int = 0, completed: int = 0, failed: int = 0, cancelled: int = 0) -> dict[str, int]:
    return {
        "in_progress": in_progress,
        "completed": completed,
        "failed": failed,
        "cancelled": cancelled,
        "total": in_progress + completed + failed + cancelled,
    }


def upload(sdk: openai.OpenAI, filename: str, data: bytes) -> FileObject:
    return sdk.files.create(file=(filename, data), purpose="assistants")


def wait_until(fetch: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = WAIT) -> T:
    """``fetch()`` until ``done`` holds for its value; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} not done after {timeout} s: {value}"
        time.sleep(0.05)


def wait_file(sdk: openai.OpenAI, store_id: str, file_id: str) -> VectorStoreFile:
    return wait_until(
        lambda: sdk.vector_stores.files.retrieve(file_id, vector_store_id=store_id),
        lambda file: file.status != "in_progress",
        f"indexing {file_id}",
    )


def wait_store(sdk: openai.OpenAI, store_id: str) -> VectorStore:
    return wait_until(
        lambda: sdk.vector_stores.retrieve(store_id),
        lambda store: store.file_counts.in_progress == 0,
        f"indexing the files of {store_id}",
    )


def wait_batch(sdk: openai.OpenAI, store_id: str, batch_id: str) -> VectorStoreFileBatch:
    return wait_until(
        lambda: sdk.vector_stores.file_batches.retrieve(batch_id, vector_store_id=store_id),
        lambda batch: batch.file_counts.in_progress == 0,
        f"batch {batch_id}",
    )


def add_file(
    sdk: openai.OpenAI, store_id: str, filename: str, data: bytes, **kwargs: Any
) -> tuple[FileObject, VectorStoreFile]:
    """Uploads a file, adds it to the store and waits for it to be indexed."""
    file = upload(sdk, filename, data)
    sdk.vector_stores.files.create(vector_store_id=store_id, file_id=file.id, **kwargs)
    return file, wait_file(sdk, store_id, file.id)


def store_with(sdk: openai.OpenAI, *documents: tuple[str, bytes]) -> tuple[str, list[str]]:
    """A new store with ``documents`` indexed; its id and the ids of the files, in order."""
    ids = [upload(sdk, name, data).id for name, data in documents]
    store = sdk.vector_stores.create(name="docs", file_ids=ids)
    done = wait_store(sdk, store.id)
    assert done.file_counts.model_dump() == counts(completed=len(ids)), done
    return store.id, ids


def search_body(sdk: openai.OpenAI, store_id: str, query: str | list[str], **kwargs: Any) -> dict[str, Any]:
    """The raw JSON of a search, checked against the spec's schema."""
    raw = sdk.vector_stores.with_raw_response.search(store_id, query=query, **kwargs)
    assert raw.http_response.status_code == 200, raw.http_response.text
    body: dict[str, Any] = raw.http_response.json()
    assert_schema("VectorStoreSearchResultsPage", body)
    return body


def hits(sdk: openai.OpenAI, store_id: str, query: str, **kwargs: Any) -> list[tuple[str, float, str]]:
    """(file id, score, text) of every result, in the order given, through the SDK's page."""
    page = sdk.vector_stores.search(store_id, query=query, **kwargs)
    found = []
    for item in page.data:
        assert len(item.content) == 1, item
        assert item.content[0].type == "text"
        found.append((item.file_id, item.score, item.content[0].text))
    return found


def content_text(sdk: openai.OpenAI, store_id: str, file_id: str) -> str:
    raw = sdk.vector_stores.files.with_raw_response.content(file_id, vector_store_id=store_id)
    body = raw.http_response.json()
    assert_schema("VectorStoreFileContentResponse", body)
    assert body["object"] == "vector_store.file_content.page"
    assert (body["has_more"], body["next_page"]) == (False, None)
    assert all(part["type"] == "text" for part in body["data"]), body
    # ... and the SDK reads the same page.
    page = sdk.vector_stores.files.content(file_id, vector_store_id=store_id)
    assert [part.text for part in page.data] == [part["text"] for part in body["data"]]
    return "".join(part["text"] for part in body["data"])


def all_store_ids(sdk: openai.OpenAI) -> list[str]:
    return [store.id for store in sdk.vector_stores.list(limit=100)]


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    """The session's SDK client with a bounded timeout, so that a hang fails the test."""
    return client.with_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def facts_store(server: Server) -> tuple[str, str]:
    """A store with FACTS_TEXT in chunks of 100 tokens, and the file's id: made once per backend, since
    embedding on the CPU is slow (tests only read it)."""
    with make_client(server, timeout=TIMEOUT) as sdk:
        store = sdk.vector_stores.create(name="facts")
        file, indexed = add_file(
            sdk, store.id, "facts.txt", FACTS_TEXT.encode(), chunking_strategy=SMALL_CHUNKS
        )
        assert indexed.status == "completed", indexed
        assert indexed.chunking_strategy is not None
        assert indexed.chunking_strategy.model_dump() == SMALL_CHUNKS
    return store.id, file.id


# -- stores ------------------------------------------------------------------------------------------


def test_create_returns_the_store(sdk: openai.OpenAI) -> None:
    before = int(time.time())
    raw = sdk.vector_stores.with_raw_response.create(name="handbook", metadata={"team": "docs"})
    after = int(time.time())
    assert raw.http_response.status_code == 200
    body = raw.http_response.json()
    assert set(body) in (STORE_KEYS, STORE_KEYS | {"expires_after"}), body
    assert_schema("VectorStoreObject", body)
    assert body["id"].startswith("vs_")
    assert len(body["id"]) > len("vs_")
    assert body["object"] == "vector_store"
    assert before <= body["created_at"] <= after
    assert body["name"] == "handbook"
    assert body["metadata"] == {"team": "docs"}
    assert body["file_counts"] == counts()
    assert body["usage_bytes"] == 0
    assert body["status"] == "completed"
    assert (body.get("expires_after"), body["expires_at"]) == (None, None)
    assert body["last_active_at"] == body["created_at"]

    store = raw.parse()
    assert store.id == body["id"]
    assert sdk.vector_stores.retrieve(store.id) == store


def test_name_is_empty_when_not_given(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create()
    assert store.name == ""
    assert store.metadata == {}
    assert sdk.vector_stores.retrieve(store.id).name == ""
    body = sdk.vector_stores.with_raw_response.retrieve(store.id).http_response.json()
    assert body["name"] == ""


@pytest.mark.parametrize("days", [1, 7, 365])
def test_expires_after_sets_expires_at(sdk: openai.OpenAI, days: int) -> None:
    store = sdk.vector_stores.create(name="short", expires_after={"anchor": "last_active_at", "days": days})
    assert store.expires_after is not None
    assert (store.expires_after.anchor, store.expires_after.days) == ("last_active_at", days)
    assert store.last_active_at is not None
    assert store.expires_at == store.last_active_at + days * 86400
    assert store.status == "completed"
    body = sdk.vector_stores.with_raw_response.retrieve(store.id).http_response.json()
    assert body["expires_after"] == {"anchor": "last_active_at", "days": days}
    assert body["expires_at"] == body["last_active_at"] + days * 86400
    assert_schema("VectorStoreObject", body)


def test_modify_changes_only_what_is_given(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="before", metadata={"a": "1"})
    renamed = sdk.vector_stores.update(store.id, name="after")
    assert (renamed.name, renamed.metadata, renamed.expires_at) == ("after", {"a": "1"}, None)
    assert renamed.created_at == store.created_at

    expiring = sdk.vector_stores.update(store.id, expires_after={"anchor": "last_active_at", "days": 30})
    assert expiring.expires_after is not None
    assert expiring.expires_after.days == 30
    assert expiring.last_active_at is not None
    assert expiring.expires_at == expiring.last_active_at + 30 * 86400
    assert expiring.name == "after"

    tagged = sdk.vector_stores.update(store.id, metadata={"b": "2"})
    assert (tagged.name, tagged.metadata, tagged.expires_at) == ("after", {"b": "2"}, expiring.expires_at)

    # expires_after is nullable on modify: null takes the expiry away.
    cleared = sdk.vector_stores.update(store.id, expires_after=None)
    assert (cleared.expires_after, cleared.expires_at) == (None, None)
    assert sdk.vector_stores.retrieve(store.id) == cleared
    assert (cleared.name, cleared.metadata) == ("after", {"b": "2"})


def test_delete_store_keeps_its_files(sdk: openai.OpenAI) -> None:
    store_id, (file_id,) = store_with(sdk, RECIPE)
    raw = sdk.vector_stores.with_raw_response.delete(store_id)
    body = raw.http_response.json()
    assert body == {"id": store_id, "object": "vector_store.deleted", "deleted": True}
    assert_schema("DeleteVectorStoreResponse", body)
    deleted = raw.parse()
    assert (deleted.id, deleted.deleted) == (store_id, True)

    sdk_error(lambda: sdk.vector_stores.retrieve(store_id), 404)
    sdk_error(lambda: sdk.vector_stores.delete(store_id), 404)
    sdk_error(lambda: sdk.vector_stores.files.list(store_id), 404)
    sdk_error(lambda: sdk.vector_stores.search(store_id, query="pancakes"), 404)
    assert store_id not in all_store_ids(sdk)
    assert sdk.files.retrieve(file_id).filename == "lemon-pancakes.txt"
    assert sdk.files.content(file_id).read() == RECIPE[1]

    # A store deleted while its file waits to be indexed: the indexer skips it and goes on.
    doomed = sdk.vector_stores.create(name="doomed", file_ids=[file_id])
    sdk.vector_stores.delete(doomed.id)
    after_id, (after_file,) = store_with(sdk, MATCH)
    assert hits(sdk, after_id, "football")[0][0] == after_file
    assert sdk.files.retrieve(file_id).filename == "lemon-pancakes.txt"


def test_expiry_counts_from_the_last_activity(sdk: openai.OpenAI) -> None:
    file = upload(sdk, *RECIPE)
    store = sdk.vector_stores.create(
        file_ids=[file.id], expires_after={"anchor": "last_active_at", "days": 2}
    )
    assert store.expires_at == store.created_at + 2 * 86400
    done = wait_store(sdk, store.id)
    assert done.last_active_at is not None
    assert done.last_active_at >= store.created_at
    assert done.expires_at == done.last_active_at + 2 * 86400
    assert done.status == "completed"


def test_list_stores_with_cursors(sdk: openai.OpenAI) -> None:
    ids = [sdk.vector_stores.create(name=f"page-{i}").id for i in range(5)]
    newest_first = [store.id for store in sdk.vector_stores.list(limit=2, order="desc")]
    assert newest_first[:5] == ids[::-1]
    assert len(newest_first) == len(set(newest_first))

    raw = sdk.vector_stores.with_raw_response.list(limit=2, order="asc", after=ids[0])
    body = raw.http_response.json()
    assert_schema("ListVectorStoresResponse", body)
    assert body["object"] == "list"
    assert [store["id"] for store in body["data"]] == ids[1:3]
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[1], ids[2], True)

    last = sdk.vector_stores.list(limit=10, order="asc", after=ids[2])
    assert [store.id for store in last.data] == ids[3:]
    assert last.has_more is False
    before = sdk.vector_stores.list(limit=2, order="asc", before=ids[4])
    assert [store.id for store in before.data] == ids[2:4]
    assert [store.name for store in before.data] == ["page-2", "page-3"]


UNKNOWN_STORE_CALLS: list[tuple[str, Callable[[openai.OpenAI, str, str], object]]] = [
    ("retrieve", lambda sdk, vs, _: sdk.vector_stores.retrieve(vs)),
    ("update", lambda sdk, vs, _: sdk.vector_stores.update(vs, name="x")),
    ("delete", lambda sdk, vs, _: sdk.vector_stores.delete(vs)),
    ("search", lambda sdk, vs, _: sdk.vector_stores.search(vs, query="anything")),
    (
        "add file",
        lambda sdk, vs, file_id: sdk.vector_stores.files.create(vector_store_id=vs, file_id=file_id),
    ),
    ("list files", lambda sdk, vs, _: sdk.vector_stores.files.list(vs)),
    ("retrieve file", lambda sdk, vs, file_id: sdk.vector_stores.files.retrieve(file_id, vector_store_id=vs)),
    ("delete file", lambda sdk, vs, file_id: sdk.vector_stores.files.delete(file_id, vector_store_id=vs)),
    ("file content", lambda sdk, vs, file_id: sdk.vector_stores.files.content(file_id, vector_store_id=vs)),
    (
        "update file",
        lambda sdk, vs, file_id: sdk.vector_stores.files.update(
            file_id, vector_store_id=vs, attributes={"a": "b"}
        ),
    ),
    ("create batch", lambda sdk, vs, file_id: sdk.vector_stores.file_batches.create(vs, file_ids=[file_id])),
    (
        "retrieve batch",
        lambda sdk, vs, _: sdk.vector_stores.file_batches.retrieve("vsfb_x", vector_store_id=vs),
    ),
]


@pytest.mark.parametrize("call", [c for _, c in UNKNOWN_STORE_CALLS], ids=[n for n, _ in UNKNOWN_STORE_CALLS])
def test_unknown_store_is_404(sdk: openai.OpenAI, call: Callable[[openai.OpenAI, str, str], object]) -> None:
    file = upload(sdk, "real.txt", b"a real file")
    error = sdk_error(lambda: call(sdk, "vs_doesnotexist", file.id), 404)
    assert error["param"] is None


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        ({"expires_after": {"anchor": "last_active_at", "days": 366}}, "expires_after.days"),
        ({"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after.anchor"),
        ({"file_ids": [f"file-{i}" for i in range(501)]}, "file_ids"),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 201},
                }
            },
            ("chunking_strategy.static", "chunking_strategy.static.chunk_overlap_tokens"),
        ),
        ({"chunking_strategy": {"type": "semantic"}}, ("chunking_strategy", "chunking_strategy.type")),
    ],
    ids=[
        "days 0",
        "days 366",
        "anchor created_at",
        "501 file_ids",
        "chunks of 50 tokens",
        "chunks of 4097 tokens",
        "overlap over half",
        "unknown chunking type",
    ],
)
def test_bad_store_is_400_and_creates_nothing(
    sdk: openai.OpenAI, kwargs: dict[str, Any], param: Param
) -> None:
    before = all_store_ids(sdk)
    sdk_error(lambda: sdk.vector_stores.create(name="refused", **kwargs), 400, param)
    assert all_store_ids(sdk) == before


# -- files in a store --------------------------------------------------------------------------------


def test_add_file_indexes_it_in_the_background(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="one file")
    file = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    before = int(time.time())
    raw = sdk.vector_stores.files.with_raw_response.create(vector_store_id=store.id, file_id=file.id)
    body = raw.http_response.json()
    assert set(body) == STORE_FILE_KEYS, body
    assert_schema("VectorStoreFileObject", body)
    assert body["id"] == file.id
    assert body["object"] == "vector_store.file"
    assert body["vector_store_id"] == store.id
    assert body["status"] == "in_progress"
    assert (body["usage_bytes"], body["last_error"], body["attributes"]) == (0, None, {})
    assert body["chunking_strategy"] == AUTO_CHUNKING
    assert before <= body["created_at"] <= int(time.time())

    # The store counts the file as soon as it is added: in progress, or already done.
    during = sdk.vector_stores.retrieve(store.id)
    assert during.file_counts.model_dump() in (counts(in_progress=1), counts(completed=1)), during
    assert during.status == ("in_progress" if during.file_counts.in_progress else "completed")

    done = wait_file(sdk, store.id, file.id)
    assert (done.id, done.status, done.last_error, done.vector_store_id) == (
        file.id,
        "completed",
        None,
        store.id,
    )
    assert done.usage_bytes > 0
    assert done.created_at == body["created_at"]
    completed = sdk.vector_stores.retrieve(store.id)
    assert completed.file_counts.model_dump() == counts(completed=1)
    assert completed.status == "completed"
    assert completed.usage_bytes == done.usage_bytes
    assert_schema(
        "VectorStoreFileObject",
        sdk.vector_stores.files.with_raw_response.retrieve(
            file.id, vector_store_id=store.id
        ).http_response.json(),
    )


def test_upload_and_poll_and_create_and_poll(sdk: openai.OpenAI, tmp_path: Path) -> None:
    store = sdk.vector_stores.create(name="helpers")
    path = tmp_path / "match-report.md"
    path.write_bytes(MATCH[1])
    with time_limit(WAIT, "files.upload_and_poll"):
        uploaded = sdk.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=path, poll_interval_ms=POLL_MS
        )
    assert (uploaded.status, uploaded.last_error, uploaded.vector_store_id) == ("completed", None, store.id)
    assert sdk.files.retrieve(uploaded.id).filename == "match-report.md"
    assert sdk.files.retrieve(uploaded.id).purpose == "assistants"

    other = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    with time_limit(WAIT, "files.create_and_poll"):
        polled = sdk.vector_stores.files.create_and_poll(
            other.id, vector_store_id=store.id, attributes={"kind": "recipe"}, poll_interval_ms=POLL_MS
        )
    assert (polled.id, polled.status, polled.attributes) == (other.id, "completed", {"kind": "recipe"})
    assert sdk.vector_stores.retrieve(store.id).file_counts.model_dump() == counts(completed=2)


def test_adding_the_same_file_twice_returns_the_one_there(sdk: openai.OpenAI) -> None:
    store_id, (file_id,) = store_with(sdk, RECIPE)
    first = sdk.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
    again = sdk.vector_stores.files.create(vector_store_id=store_id, file_id=file_id)
    assert again == first
    assert again.status == "completed"
    assert [f.id for f in sdk.vector_stores.files.list(store_id)] == [file_id]
    assert sdk.vector_stores.retrieve(store_id).file_counts.model_dump() == counts(completed=1)
    # Through a batch too: the file is not added a second time.
    batch = sdk.vector_stores.file_batches.create(store_id, file_ids=[file_id])
    wait_batch(sdk, store_id, batch.id)
    assert sdk.vector_stores.retrieve(store_id).file_counts.model_dump() == counts(completed=1)
    assert len(hits(sdk, store_id, "pancakes", max_num_results=50)) == 1

    # A list that names a file twice adds it once.
    twice = sdk.vector_stores.create(name="twice", file_ids=[file_id, file_id])
    assert twice.file_counts.total == 1
    assert [f.id for f in sdk.vector_stores.files.list(twice.id)] == [file_id]
    sdk.vector_stores.file_batches.create(twice.id, file_ids=[file_id, file_id])
    assert wait_store(sdk, twice.id).file_counts.model_dump() == counts(completed=1)


@pytest.mark.anyio
async def test_concurrent_adds_of_one_file_make_one_store_file(aclient: openai.AsyncOpenAI) -> None:
    """Ten adds of the same file at once, for each of four files: every add answers with the one store
    file (no unique-key error), and each file is in the store once."""
    sdk = aclient.with_options(timeout=TIMEOUT)
    store = await sdk.vector_stores.create(name="race")
    files = [
        await sdk.files.create(
            file=(f"note-{i}.txt", f"Note {i}: feed the cat.".encode()), purpose="assistants"
        )
        for i in range(4)
    ]
    added = await asyncio.gather(
        *(
            sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
            for _ in range(10)
            for file in files
        )
    )
    assert {(item.id, item.vector_store_id) for item in added} == {(file.id, store.id) for file in files}
    listed = [item.id async for item in sdk.vector_stores.files.list(store.id, order="asc")]
    assert sorted(listed) == sorted(file.id for file in files)
    with time_limit(WAIT, "vector_stores.files.poll"):
        for file in files:
            done = await sdk.vector_stores.files.poll(
                file.id, vector_store_id=store.id, poll_interval_ms=POLL_MS
            )
            assert done.status == "completed"
    assert (await sdk.vector_stores.retrieve(store.id)).file_counts.model_dump() == counts(completed=4)


def test_static_chunking_is_reported_and_applied(sdk: openai.OpenAI, facts_store: tuple[str, str]) -> None:
    store_id, small_id = facts_store
    small = sdk.vector_stores.files.retrieve(small_id, vector_store_id=store_id)
    assert small.chunking_strategy is not None
    assert small.chunking_strategy.model_dump() == SMALL_CHUNKS
    assert small.status == "completed"

    found = hits(sdk, store_id, "How many gulls did the lighthouse keeper count?", max_num_results=50)
    assert {file_id for file_id, _, _ in found} == {small_id}
    # About 700 tokens in chunks of at most 100 that start every 50: a dozen chunks or so.
    assert 11 <= len(found) <= 20, len(found)
    for _, _, text in found:
        assert text in FACTS_TEXT, text
        assert len(text) < len(FACTS_TEXT) // 5
    assert len({text for _, _, text in found}) == len(found)
    # The chunks overlap, and yet the content is the text once.
    assert content_text(sdk, store_id, small_id).strip() == FACTS_TEXT.strip()

    # Chunks that do not overlap: the content is still the text, with the breaks between the chunks.
    flat = sdk.vector_stores.create(name="no overlap")
    no_overlap: StaticFileChunkingStrategyObjectParam = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
    }
    cut, _ = add_file(sdk, flat.id, "facts-flat.txt", FACTS_TEXT.encode(), chunking_strategy=no_overlap)
    assert 6 <= len(hits(sdk, flat.id, "gulls", max_num_results=50)) <= len(found) // 2 + 1
    assert content_text(sdk, flat.id, cut.id).strip() == FACTS_TEXT.strip()

    # The same text with the default (800/400) chunks: far fewer of them.
    other = sdk.vector_stores.create(name="auto chunks")
    auto, auto_file = add_file(
        sdk, other.id, "facts-auto.txt", FACTS_TEXT.encode(), chunking_strategy={"type": "auto"}
    )
    assert auto_file.chunking_strategy is not None
    assert auto_file.chunking_strategy.model_dump() == AUTO_CHUNKING
    assert len(hits(sdk, other.id, "gulls", max_num_results=50)) == 1  # the whole text fits in one
    assert content_text(sdk, other.id, auto.id).strip() == FACTS_TEXT.strip()


def test_store_chunking_strategy_applies_to_its_file_ids(sdk: openai.OpenAI) -> None:
    strategy: StaticFileChunkingStrategyObjectParam = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 150},
    }
    file = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    store = sdk.vector_stores.create(name="strategy", file_ids=[file.id], chunking_strategy=strategy)
    assert store.file_counts.total == 1
    listed = list(sdk.vector_stores.files.list(store.id))
    assert [f.id for f in listed] == [file.id]
    assert listed[0].chunking_strategy is not None
    assert listed[0].chunking_strategy.model_dump() == strategy
    # A file added later without a strategy gets the default, not the store's.
    _, later = add_file(sdk, store.id, "match-report.md", MATCH[1])
    assert later.chunking_strategy is not None
    assert later.chunking_strategy.model_dump() == AUTO_CHUNKING


@pytest.mark.parametrize(
    ("strategy", "param"),
    [
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 10}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401}},
            ("chunking_strategy.static", "chunking_strategy.static.chunk_overlap_tokens"),
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": -1}},
            ("chunking_strategy.static", "chunking_strategy.static.chunk_overlap_tokens"),
        ),
        ({"type": "static"}, "chunking_strategy.static"),
    ],
    ids=["chunks of 50 tokens", "overlap over half", "negative overlap", "static without sizes"],
)
def test_bad_chunking_strategy_of_a_file_is_400(sdk: openai.OpenAI, strategy: Any, param: Param) -> None:
    store = sdk.vector_stores.create(name="bad chunking")
    file = upload(sdk, "a.txt", b"some text")
    sdk_error(
        lambda: sdk.vector_stores.files.create(
            vector_store_id=store.id, file_id=file.id, chunking_strategy=strategy
        ),
        400,
        param,
    )
    assert list(sdk.vector_stores.files.list(store.id)) == []
    assert sdk.vector_stores.retrieve(store.id).file_counts.model_dump() == counts()


def test_list_files_filters_and_pages(sdk: openai.OpenAI) -> None:
    documents = [
        (f"part-{i}.txt", f"Part {i} of the handbook covers topic number {i}.".encode()) for i in range(4)
    ]
    ids = [upload(sdk, name, data).id for name, data in documents]
    broken = upload(sdk, "picture.png", PNG).id
    ids.insert(2, broken)
    store = sdk.vector_stores.create(name="listing", file_ids=ids)
    done = wait_store(sdk, store.id)
    assert done.file_counts.model_dump() == counts(completed=4, failed=1)
    assert done.status == "completed"

    assert [f.id for f in sdk.vector_stores.files.list(store.id, limit=2, order="asc")] == ids
    assert [f.id for f in sdk.vector_stores.files.list(store.id, limit=3, order="desc")] == ids[::-1]
    good = [file_id for file_id in ids if file_id != broken]
    assert [f.id for f in sdk.vector_stores.files.list(store.id, filter="completed", order="asc")] == good
    failed = list(sdk.vector_stores.files.list(store.id, filter="failed"))
    assert [f.id for f in failed] == [broken]
    assert [f.status for f in failed] == ["failed"]
    assert list(sdk.vector_stores.files.list(store.id, filter="in_progress")) == []
    assert list(sdk.vector_stores.files.list(store.id, filter="cancelled")) == []

    raw = sdk.vector_stores.files.with_raw_response.list(store.id, limit=2, order="asc", after=ids[0])
    body = raw.http_response.json()
    assert_schema("ListVectorStoreFilesResponse", body)
    assert [f["id"] for f in body["data"]] == ids[1:3]
    assert (body["object"], body["first_id"], body["last_id"], body["has_more"]) == (
        "list",
        ids[1],
        ids[2],
        True,
    )
    for item in body["data"]:
        assert set(item) == STORE_FILE_KEYS
        assert item["vector_store_id"] == store.id


def test_retrieving_a_file_not_in_the_store_is_404(sdk: openai.OpenAI) -> None:
    store_id, _ = store_with(sdk, RECIPE)
    outside = upload(sdk, "elsewhere.txt", b"not in the store")
    for file_id in (outside.id, "file-doesnotexist"):
        check_not_in_store(sdk, store_id, file_id)


def check_not_in_store(sdk: openai.OpenAI, store_id: str, file_id: str) -> None:
    sdk_error(lambda: sdk.vector_stores.files.retrieve(file_id, vector_store_id=store_id), 404)
    sdk_error(lambda: sdk.vector_stores.files.delete(file_id, vector_store_id=store_id), 404)
    sdk_error(lambda: sdk.vector_stores.files.content(file_id, vector_store_id=store_id), 404)
    sdk_error(
        lambda: sdk.vector_stores.files.update(file_id, vector_store_id=store_id, attributes={"a": "b"}), 404
    )


def test_detaching_a_file_keeps_the_file(sdk: openai.OpenAI) -> None:
    store_id, (recipe_id, match_id) = store_with(sdk, RECIPE, MATCH)
    raw = sdk.vector_stores.files.with_raw_response.delete(recipe_id, vector_store_id=store_id)
    body = raw.http_response.json()
    assert body == {"id": recipe_id, "object": "vector_store.file.deleted", "deleted": True}
    assert_schema("DeleteVectorStoreFileResponse", body)

    sdk_error(lambda: sdk.vector_stores.files.retrieve(recipe_id, vector_store_id=store_id), 404)
    sdk_error(lambda: sdk.vector_stores.files.delete(recipe_id, vector_store_id=store_id), 404)
    assert [f.id for f in sdk.vector_stores.files.list(store_id)] == [match_id]
    store = sdk.vector_stores.retrieve(store_id)
    assert store.file_counts.model_dump() == counts(completed=1)
    assert (
        store.usage_bytes == sdk.vector_stores.files.retrieve(match_id, vector_store_id=store_id).usage_bytes
    )
    found = hits(sdk, store_id, "How do I make lemon pancakes?", max_num_results=50)
    assert {file_id for file_id, _, _ in found} == {match_id}

    # The File itself is still there, whole, and can be added again.
    assert sdk.files.retrieve(recipe_id).filename == "lemon-pancakes.txt"
    assert sdk.files.content(recipe_id).read() == RECIPE[1]
    again = sdk.vector_stores.files.create(vector_store_id=store_id, file_id=recipe_id)
    assert again.status == "in_progress"
    assert wait_file(sdk, store_id, recipe_id).status == "completed"
    assert hits(sdk, store_id, "How do I make lemon pancakes?")[0][0] == recipe_id


def test_attributes_are_kept_and_updated(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="attributes")
    attributes: dict[str, str | float | bool] = {"author": "Ada", "year": 2024, "draft": False, "score": 4.5}
    file, added = add_file(sdk, store.id, "lemon-pancakes.txt", RECIPE[1], attributes=attributes)
    assert added.attributes == attributes
    body = sdk.vector_stores.files.with_raw_response.retrieve(
        file.id, vector_store_id=store.id
    ).http_response.json()
    assert body["attributes"] == {"author": "Ada", "year": 2024, "draft": False, "score": 4.5}

    updated = sdk.vector_stores.files.update(
        file.id, vector_store_id=store.id, attributes={"author": "Grace"}
    )
    assert updated.attributes == {"author": "Grace"}
    assert (updated.id, updated.status, updated.usage_bytes) == (file.id, "completed", added.usage_bytes)
    assert sdk.vector_stores.files.retrieve(file.id, vector_store_id=store.id).attributes == {
        "author": "Grace"
    }
    search = search_body(sdk, store.id, "pancakes")
    assert [item["attributes"] for item in search["data"]] == [{"author": "Grace"}]

    sixteen: dict[str, str | float | bool] = {f"k{i}": i for i in range(16)}
    assert (
        sdk.vector_stores.files.update(file.id, vector_store_id=store.id, attributes=sixteen).attributes
        == sixteen
    )


BAD_ATTRIBUTES: list[tuple[str, dict[str, Any]]] = [
    ("17 keys", {f"k{i}": i for i in range(17)}),
    ("key of 65 characters", {"k" * 65: "v"}),
    ("value of 513 characters", {"k": "v" * 513}),
    ("object value", {"k": {"nested": 1}}),
    ("list value", {"k": [1, 2]}),
]


@pytest.mark.parametrize("attributes", [a for _, a in BAD_ATTRIBUTES], ids=[n for n, _ in BAD_ATTRIBUTES])
def test_bad_attributes_are_400(sdk: openai.OpenAI, attributes: dict[str, Any]) -> None:
    store = sdk.vector_stores.create(name="bad attributes")
    file = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    sdk_error(
        lambda: sdk.vector_stores.files.create(
            vector_store_id=store.id, file_id=file.id, attributes=attributes
        ),
        400,
        ("attributes", *(f"attributes.{key}" for key in attributes)),
    )
    assert sdk.vector_stores.retrieve(store.id).file_counts.total == 0
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file.id, attributes={"ok": True})
    sdk_error(
        lambda: sdk.vector_stores.files.update(file.id, vector_store_id=store.id, attributes=attributes),
        400,
        ("attributes", *(f"attributes.{key}" for key in attributes)),
    )
    assert sdk.vector_stores.files.retrieve(file.id, vector_store_id=store.id).attributes == {"ok": True}


def test_content_is_the_extracted_text(sdk: openai.OpenAI) -> None:
    documents = [
        RECIPE,
        MATCH,
        PLANET_PDF,
        ("zorblax.html", PLANET_HTML.encode()),
        ("planet.json", b'{"planet": "Zorblax", "moons": ["Pim", "Quorra", "Tessel"], "rings": true}'),
    ]
    store_id, (recipe, match, pdf, html, data) = store_with(sdk, *documents)
    assert content_text(sdk, store_id, recipe).strip() == RECIPE_TEXT.strip()
    assert content_text(sdk, store_id, match).strip() == MATCH_TEXT.strip()

    pdf_text = content_text(sdk, store_id, pdf)
    assert " ".join(pdf_text.split()) == " ".join(PLANET_LINES)

    html_text = content_text(sdk, store_id, html)
    assert "Zorblax has three moons named Pim, Quorra and Tessel." in " ".join(html_text.split())
    for markup in ("<p>", "<b>", "</", "color: red", "scriptword"):
        assert markup not in html_text, html_text

    json_text = content_text(sdk, store_id, data)
    for word in ("planet", "Zorblax", "moons", "Pim", "Quorra", "Tessel"):
        assert word in json_text, json_text


UNREADABLE: list[tuple[str, bytes, str]] = [
    ("empty.txt", b"", "invalid_file"),
    ("blank.txt", b" \n\t\n  ", "invalid_file"),
    ("picture.png", PNG, "unsupported_file"),
    ("archive.zip", zip_bytes(), "unsupported_file"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R", "invalid_file"),
]


def test_unreadable_files_fail_and_the_others_complete(sdk: openai.OpenAI) -> None:
    good = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    bad = {upload(sdk, name, data).id: (name, code) for name, data, code in UNREADABLE}
    store = sdk.vector_stores.create(name="mixed", file_ids=[*bad, good.id])
    done = wait_store(sdk, store.id)
    assert done.file_counts.model_dump() == counts(completed=1, failed=len(UNREADABLE))
    assert done.status == "completed"

    assert sdk.vector_stores.files.retrieve(good.id, vector_store_id=store.id).status == "completed"
    for file_id, (name, code) in bad.items():
        raw = sdk.vector_stores.files.with_raw_response.retrieve(file_id, vector_store_id=store.id)
        body = raw.http_response.json()
        assert_schema("VectorStoreFileObject", body)
        assert body["status"] == "failed", (name, body)
        assert body["last_error"] is not None, (name, body)
        assert set(body["last_error"]) == {"code", "message"}, body
        assert body["last_error"]["code"] == code, (name, body)
        assert body["last_error"]["message"], body
        assert body["usage_bytes"] == 0, body
        assert content_text(sdk, store.id, file_id) == "", name

    found = hits(sdk, store.id, "three moons", max_num_results=50)
    assert {file_id for file_id, _, _ in found} == {good.id}


def test_unknown_file_ids_are_400_naming_the_position(sdk: openai.OpenAI, http: httpx.Client) -> None:
    good = upload(sdk, "lemon-pancakes.txt", RECIPE[1])
    store = sdk.vector_stores.create(name="unknown files")

    error = sdk_error(
        lambda: sdk.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope"), 400, "file_id"
    )
    assert "file-nope" in error["message"]

    before = all_store_ids(sdk)
    sdk_error(lambda: sdk.vector_stores.create(file_ids=[good.id, "file-nope"]), 400, "file_ids[1]")
    assert all_store_ids(sdk) == before

    sdk_error(
        lambda: sdk.vector_stores.file_batches.create(store.id, file_ids=["file-nope", good.id]),
        400,
        "file_ids[0]",
    )
    response = http.post(
        f"/v1/vector_stores/{store.id}/file_batches",
        json={"files": [{"file_id": good.id}, {"file_id": "file-nope"}]},
    )
    assert_error(response, 400, "files[1].file_id")
    # Nothing of a refused request was added.
    assert list(sdk.vector_stores.files.list(store.id)) == []
    assert sdk.vector_stores.retrieve(store.id).file_counts.model_dump() == counts()


# -- batches -----------------------------------------------------------------------------------------


def test_upload_and_poll_three_documents_then_search(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="three kinds")
    with time_limit(WAIT, "file_batches.upload_and_poll"):
        batch = sdk.vector_stores.file_batches.upload_and_poll(
            store.id, files=[RECIPE, MATCH, PLANET_PDF], poll_interval_ms=POLL_MS
        )
    assert batch.id.startswith("vsfb_")
    assert (batch.object, batch.vector_store_id, batch.status) == (
        "vector_store.files_batch",
        store.id,
        "completed",
    )
    assert batch.file_counts.model_dump() == counts(completed=3)

    raw = sdk.vector_stores.file_batches.with_raw_response.retrieve(batch.id, vector_store_id=store.id)
    body = raw.http_response.json()
    assert set(body) == BATCH_KEYS, body
    assert_schema("VectorStoreFileBatchObject", body)
    assert raw.parse() == batch

    listed = list(sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, order="asc"))
    assert {f.status for f in listed} == {"completed"}
    names = {f.id: sdk.files.retrieve(f.id).filename for f in listed}
    assert sorted(names.values()) == ["lemon-pancakes.txt", "match-report.md", "zorblax.pdf"]
    by_name = {name: file_id for file_id, name in names.items()}
    done = sdk.vector_stores.retrieve(store.id)
    assert done.file_counts.model_dump() == counts(completed=3)
    assert done.status == "completed"
    assert done.usage_bytes == sum(f.usage_bytes for f in listed) > 0

    answer = search_body(sdk, store.id, MOONS_QUESTION)
    assert answer["object"] == "vector_store.search_results.page"
    assert answer["search_query"] == [MOONS_QUESTION]
    assert (answer["has_more"], answer["next_page"]) == (False, None)
    first = answer["data"][0]
    assert (first["file_id"], first["filename"]) == (by_name["zorblax.pdf"], "zorblax.pdf")
    assert MOONS_ANSWER in first["content"][0]["text"]
    assert first["attributes"] == {}
    scores = [item["score"] for item in answer["data"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= score <= 1 for score in scores)
    assert len(answer["data"]) == 3  # one chunk each, and all of them under the default of 10

    assert hits(sdk, store.id, "How do I cook pancakes with lemon?")[0][0] == by_name["lemon-pancakes.txt"]
    assert hits(sdk, store.id, "Who won the football match on Saturday?")[0][0] == by_name["match-report.md"]


def test_batch_of_file_ids_with_attributes_and_chunking(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="batch")
    ids = [upload(sdk, name, data).id for name, data in (RECIPE, MATCH)]
    strategy: StaticFileChunkingStrategyObjectParam = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100},
    }
    batch = sdk.vector_stores.file_batches.create(
        store.id, file_ids=ids, attributes={"source": "upload"}, chunking_strategy=strategy
    )
    assert (batch.object, batch.vector_store_id) == ("vector_store.files_batch", store.id)
    assert batch.file_counts.total == 2
    assert batch.file_counts.in_progress + batch.file_counts.completed == 2
    done = wait_batch(sdk, store.id, batch.id)
    assert (done.status, done.file_counts.model_dump()) == ("completed", counts(completed=2))
    for file in sdk.vector_stores.files.list(store.id):
        assert file.attributes == {"source": "upload"}
        assert file.chunking_strategy is not None
        assert file.chunking_strategy.model_dump() == strategy


def test_batch_of_files_with_their_own_attributes_and_chunking(
    sdk: openai.OpenAI, http: httpx.Client
) -> None:
    store = sdk.vector_stores.create(name="per file")
    recipe, match, planet = (upload(sdk, name, data).id for name, data in (RECIPE, MATCH, PLANET_PDF))
    strategy: StaticFileChunkingStrategyObjectParam = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 60},
    }
    response = http.post(
        f"/v1/vector_stores/{store.id}/file_batches",
        json={
            "files": [
                {"file_id": recipe, "attributes": {"topic": "food"}},
                {"file_id": match, "attributes": {"topic": "sport"}, "chunking_strategy": strategy},
                {"file_id": planet},
            ]
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_schema("VectorStoreFileBatchObject", body)
    assert body["file_counts"]["total"] == 3
    wait_batch(sdk, store.id, body["id"])
    files = {f.id: f for f in sdk.vector_stores.file_batches.list_files(body["id"], vector_store_id=store.id)}
    assert set(files) == {recipe, match, planet}
    assert {f.status for f in files.values()} == {"completed"}
    assert (files[recipe].attributes, files[match].attributes, files[planet].attributes) == (
        {"topic": "food"},
        {"topic": "sport"},
        {},
    )
    chunking = {
        file_id: f.chunking_strategy.model_dump() for file_id, f in files.items() if f.chunking_strategy
    }
    assert chunking == {recipe: AUTO_CHUNKING, match: strategy, planet: AUTO_CHUNKING}


def test_batch_files_ignore_the_global_attributes_and_chunking(
    sdk: openai.OpenAI, http: httpx.Client
) -> None:
    """The spec: with ``files``, "the global attributes or chunking_strategy will be ignored and must be
    specified for each file"."""
    store = sdk.vector_stores.create(name="global ignored")
    recipe = upload(sdk, *RECIPE).id
    strategy: StaticFileChunkingStrategyObjectParam = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 60},
    }
    response = http.post(
        f"/v1/vector_stores/{store.id}/file_batches",
        json={"files": [{"file_id": recipe}], "attributes": {"global": True}, "chunking_strategy": strategy},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    file = sdk.vector_stores.files.retrieve(recipe, vector_store_id=store.id)
    assert file.attributes == {}
    assert file.chunking_strategy is not None
    assert file.chunking_strategy.model_dump() == AUTO_CHUNKING


def test_batch_list_files_filters_and_counts(sdk: openai.OpenAI) -> None:
    store_id, (outside,) = store_with(sdk, MATCH)
    good = [
        upload(sdk, f"note-{i}.txt", f"Note {i}: water the basil on day {i}.".encode()).id for i in range(3)
    ]
    broken = upload(sdk, "archive.zip", zip_bytes()).id
    batch = sdk.vector_stores.file_batches.create(store_id, file_ids=[*good, broken])
    done = wait_batch(sdk, store_id, batch.id)
    assert (done.status, done.file_counts.model_dump()) == ("completed", counts(completed=3, failed=1))

    all_files = [
        f.id
        for f in sdk.vector_stores.file_batches.list_files(
            batch.id, vector_store_id=store_id, order="asc", limit=2
        )
    ]
    assert all_files == [*good, broken]  # and not the store's other file
    assert outside not in all_files
    completed = sdk.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=store_id, filter="completed", order="asc"
    )
    assert [f.id for f in completed] == good
    failed = sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=store_id, filter="failed")
    assert [f.id for f in failed] == [broken]
    assert (
        list(
            sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=store_id, filter="cancelled")
        )
        == []
    )
    raw = sdk.vector_stores.file_batches.with_raw_response.list_files(batch.id, vector_store_id=store_id)
    assert_schema("ListVectorStoreFilesResponse", raw.http_response.json())
    assert sdk.vector_stores.retrieve(store_id).file_counts.model_dump() == counts(completed=4, failed=1)

    # A batch whose every file fails has failed.
    hopeless = sdk.vector_stores.file_batches.create(store_id, file_ids=[upload(sdk, "p.png", PNG).id])
    over = wait_batch(sdk, store_id, hopeless.id)
    assert (over.status, over.file_counts.model_dump()) == ("failed", counts(failed=1))


def test_batch_of_another_store_is_404(sdk: openai.OpenAI) -> None:
    store_id, (file_id,) = store_with(sdk, RECIPE)
    other = sdk.vector_stores.create(name="other")
    batch = sdk.vector_stores.file_batches.create(store_id, file_ids=[file_id])
    for call in (
        lambda: sdk.vector_stores.file_batches.retrieve(batch.id, vector_store_id=other.id),
        lambda: sdk.vector_stores.file_batches.cancel(batch.id, vector_store_id=other.id),
        lambda: sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=other.id),
        lambda: sdk.vector_stores.file_batches.retrieve("vsfb_doesnotexist", vector_store_id=store_id),
        lambda: sdk.vector_stores.file_batches.cancel("vsfb_doesnotexist", vector_store_id=store_id),
        lambda: sdk.vector_stores.file_batches.list_files("vsfb_doesnotexist", vector_store_id=store_id),
    ):
        sdk_error(call, 404)


def test_bad_batches_are_400(sdk: openai.OpenAI, http: httpx.Client) -> None:
    store = sdk.vector_stores.create(name="bad batches")
    file = upload(sdk, *RECIPE).id
    sdk_error(lambda: sdk.vector_stores.file_batches.create(store.id, file_ids=[]), 400, "file_ids")
    url = f"/v1/vector_stores/{store.id}/file_batches"
    assert_error(http.post(url, json={"files": []}), 400, "files")
    assert_error(http.post(url, json={}), 400, (None, "file_ids", "files"))
    assert_error(
        http.post(url, json={"file_ids": [file], "files": [{"file_id": file}]}),
        400,
        (None, "file_ids", "files"),
    )
    assert_error(http.post(url, json={"files": [{"attributes": {"a": "b"}}]}), 400, "files[0].file_id")
    assert_error(
        http.post(url, json={"file_ids": [file], "attributes": {f"k{i}": i for i in range(17)}}),
        400,
        "attributes",
    )
    assert_error(
        http.post(
            url,
            json={
                "file_ids": [file],
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0},
                },
            },
        ),
        400,
        "chunking_strategy.static.max_chunk_size_tokens",
    )
    assert list(sdk.vector_stores.files.list(store.id)) == []


def big_text(paragraphs: int) -> str:
    """Long, varied text, for indexing that takes a while."""
    words = [
        "harbour",
        "lantern",
        "granite",
        "orchard",
        "meadow",
        "copper",
        "violet",
        "thunder",
        "willow",
        "saffron",
    ]
    return "".join(
        f"Paragraph {n}: the {words[n % 10]} near the {words[(n * 3) % 10]} was {n % 97} steps from the "
        f"{words[(n * 7) % 10]}, and the {words[(n + 4) % 10]} kept {n * 13 % 1000} notes about it.\n"
        for n in range(paragraphs)
    )


def test_cancel_batch_cancels_the_files_not_indexed_yet(sdk: openai.OpenAI) -> None:
    # A large file keeps the indexer busy, so that the batch's files are still waiting when it is cancelled.
    busy = sdk.vector_stores.create(name="busy")
    large = upload(sdk, "large.txt", big_text(30).encode())
    sdk.vector_stores.files.create(vector_store_id=busy.id, file_id=large.id)

    store = sdk.vector_stores.create(name="cancelled")
    ids = [upload(sdk, name, data).id for name, data in (RECIPE, MATCH, PLANET_PDF)]
    batch = sdk.vector_stores.file_batches.create(store.id, file_ids=ids)
    raw = sdk.vector_stores.file_batches.with_raw_response.cancel(batch.id, vector_store_id=store.id)
    body = raw.http_response.json()
    assert_schema("VectorStoreFileBatchObject", body)
    assert (body["id"], body["status"]) == (batch.id, "cancelled"), body
    assert body["file_counts"] == counts(cancelled=3), body
    assert sdk.vector_stores.files.retrieve(large.id, vector_store_id=busy.id).status == "in_progress"

    cancelled = list(
        sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="cancelled")
    )
    assert sorted(f.id for f in cancelled) == sorted(ids)
    assert list(sdk.vector_stores.files.list(store.id, filter="in_progress")) == []

    # Once the indexer has been through its queue, the cancelled files are still cancelled and unsearchable.
    assert wait_file(sdk, busy.id, large.id).status == "completed"
    after = sdk.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert (after.status, after.file_counts.model_dump()) == ("cancelled", counts(cancelled=3))
    for file_id in ids:
        file = sdk.vector_stores.files.retrieve(file_id, vector_store_id=store.id)
        assert (file.status, file.usage_bytes) == ("cancelled", 0)
    assert hits(sdk, store.id, MOONS_QUESTION) == []
    final = sdk.vector_stores.retrieve(store.id)
    assert final.file_counts.model_dump() == counts(cancelled=3)
    assert (final.status, final.usage_bytes) == ("completed", 0)


# -- search ------------------------------------------------------------------------------------------


def test_search_max_num_results_and_queries(sdk: openai.OpenAI, facts_store: tuple[str, str]) -> None:
    store_id, facts_id = facts_store
    query = "How many boats were there on day 20?"
    every = hits(sdk, store_id, query, max_num_results=50)
    assert len(every) > 10
    assert len(search_body(sdk, store_id, query)["data"]) == 10  # the default
    for limit in (1, 3, 10, 50):
        body = search_body(sdk, store_id, query, max_num_results=limit)
        assert len(body["data"]) == min(limit, len(every))
        assert {item["file_id"] for item in body["data"]} == {facts_id}
        assert {item["filename"] for item in body["data"]} == {"facts.txt"}
        assert [item["content"][0]["text"] for item in body["data"]] == [text for _, _, text in every[:limit]]
    assert "Fact 20:" in every[0][2]

    queries = ["boats on day 20", "gulls on day 12"]
    both = search_body(sdk, store_id, queries, max_num_results=4)
    assert both["search_query"] == queries
    assert len(both["data"]) == 4


def test_search_score_threshold(sdk: openai.OpenAI) -> None:
    store_id, ids = store_with(sdk, RECIPE, MATCH, PLANET_PDF)
    everything = hits(sdk, store_id, MOONS_QUESTION)
    assert everything[0][0] == ids[2]
    assert len(everything) == 3
    second = everything[1][1]
    kept = hits(sdk, store_id, MOONS_QUESTION, ranking_options={"score_threshold": second})
    assert [file_id for file_id, _, _ in kept] == [
        file_id for file_id, score, _ in everything if score >= second
    ]
    assert len(kept) >= 2
    assert hits(sdk, store_id, MOONS_QUESTION, ranking_options={"score_threshold": 1.0}) == []
    none_ranker = hits(
        sdk, store_id, MOONS_QUESTION, ranking_options={"ranker": "none", "score_threshold": 0}
    )
    assert none_ranker[0][0] == ids[2]


def test_search_filters_on_attributes(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="filters")
    documents = [
        (RECIPE, {"topic": "food", "year": 2023, "public": True}),
        (MATCH, {"topic": "sport", "year": 2024, "public": False}),
        (PLANET_PDF, {"topic": "space", "year": 2025, "public": True}),
    ]
    ids = []
    for (name, data), attributes in documents:
        file, _ = add_file(sdk, store.id, name, data, attributes=attributes)
        ids.append(file.id)
    recipe, match, planet = ids

    def found(filters: dict[str, Any], query: str = MOONS_QUESTION) -> list[str]:
        return [file_id for file_id, _, _ in hits(sdk, store.id, query, filters=filters)]

    assert found({"type": "eq", "key": "topic", "value": "food"}) == [recipe]
    assert sorted(found({"type": "ne", "key": "topic", "value": "food"})) == sorted([match, planet])
    assert found({"type": "ne", "key": "topic", "value": "food"})[0] == planet
    assert sorted(found({"type": "gt", "key": "year", "value": 2023})) == sorted([match, planet])
    assert found({"type": "gte", "key": "year", "value": 2025}) == [planet]
    assert sorted(found({"type": "lt", "key": "year", "value": 2025})) == sorted([recipe, match])
    assert found({"type": "lte", "key": "year", "value": 2023}) == [recipe]
    assert found({"type": "eq", "key": "public", "value": False}) == [match]
    assert sorted(found({"type": "in", "key": "topic", "value": ["food", "sport"]})) == sorted(
        [recipe, match]
    )
    assert found({"type": "nin", "key": "topic", "value": ["food", "sport"]}) == [planet]
    assert found({"type": "eq", "key": "missing", "value": "x"}) == []
    assert found(
        {
            "type": "and",
            "filters": [
                {"type": "eq", "key": "public", "value": True},
                {"type": "lt", "key": "year", "value": 2025},
            ],
        }
    ) == [recipe]
    assert sorted(
        found(
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "topic", "value": "sport"},
                    {
                        "type": "and",
                        "filters": [
                            {"type": "eq", "key": "public", "value": True},
                            {"type": "gte", "key": "year", "value": 2025},
                        ],
                    },
                ],
            }
        )
    ) == sorted([match, planet])
    # Attributes changed after indexing are the ones filtered on.
    sdk.vector_stores.files.update(recipe, vector_store_id=store.id, attributes={"topic": "space"})
    assert sorted(found({"type": "eq", "key": "topic", "value": "space"})) == sorted([recipe, planet])
    body = search_body(
        sdk, store.id, MOONS_QUESTION, filters={"type": "eq", "key": "topic", "value": "space"}
    )
    assert body["data"][0]["attributes"] == {
        "topic": "space",
        "year": 2025,
        "public": True,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": "x", "max_num_results": 0}, "max_num_results"),
        ({"query": "x", "max_num_results": 51}, "max_num_results"),
        ({"query": "x", "ranking_options": {"score_threshold": 1.5}}, "ranking_options.score_threshold"),
        ({"query": "x", "ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
        ({"query": []}, "query"),
        ({}, "query"),
        ({"query": "x", "filters": {"type": "like", "key": "a", "value": "b"}}, ("filters", "filters.type")),
        ({"query": "x", "filters": {"type": "and"}}, ("filters", "filters.filters")),
        ({"query": "x", "unknown": 1}, "unknown"),
    ],
    ids=[
        "max_num_results 0",
        "max_num_results 51",
        "score_threshold 1.5",
        "unknown ranker",
        "no queries",
        "no query",
        "unknown filter type",
        "compound filter without filters",
        "unknown field",
    ],
)
def test_bad_search_is_400(
    sdk: openai.OpenAI, http: httpx.Client, body: dict[str, Any], param: Param
) -> None:
    store = sdk.vector_stores.create(name="bad search")
    assert_error(http.post(f"/v1/vector_stores/{store.id}/search", json=body), 400, param)


def test_search_through_the_sdk_with_max_num_results_51_is_400(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="sdk bad search")
    sdk_error(
        lambda: sdk.vector_stores.search(store.id, query="x", max_num_results=51), 400, "max_num_results"
    )


def test_korean_query_finds_the_korean_document(sdk: openai.OpenAI) -> None:
    store_id, (kimchi, subway, match) = store_with(
        sdk, ("kimchi.txt", KIMCHI_KO.encode()), ("subway.txt", SUBWAY_KO.encode()), MATCH
    )
    found = hits(sdk, store_id, "김치찌개에는 무엇을 넣나요?")
    assert found[0][0] == kimchi
    assert found[0][2].strip() == KIMCHI_KO.strip()
    assert hits(sdk, store_id, "지하철 2호선은 어떤 노선인가요?")[0][0] == subway
    assert hits(sdk, store_id, "Who won the football match?")[0][0] == match
    assert content_text(sdk, store_id, kimchi).strip() == KIMCHI_KO.strip()


def test_an_empty_store_finds_nothing(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="empty")
    body = search_body(sdk, store.id, "anything at all")
    assert body == {
        "object": "vector_store.search_results.page",
        "search_query": ["anything at all"],
        "data": [],
        "has_more": False,
        "next_page": None,
    }


def test_deleting_a_file_takes_it_out_of_every_store(sdk: openai.OpenAI) -> None:
    planet = upload(sdk, *PLANET_PDF)
    recipe = upload(sdk, *RECIPE)
    first = sdk.vector_stores.create(name="first", file_ids=[planet.id, recipe.id])
    second = sdk.vector_stores.create(name="second", file_ids=[planet.id])
    for store_id in (first.id, second.id):
        wait_store(sdk, store_id)
    assert hits(sdk, first.id, MOONS_QUESTION)[0][0] == planet.id
    assert hits(sdk, second.id, MOONS_QUESTION)[0][0] == planet.id
    recipe_bytes = sdk.vector_stores.files.retrieve(recipe.id, vector_store_id=first.id).usage_bytes

    assert sdk.files.delete(planet.id).deleted is True
    one = sdk.vector_stores.retrieve(first.id)
    assert one.file_counts.model_dump() == counts(completed=1)
    assert one.usage_bytes == recipe_bytes
    two = sdk.vector_stores.retrieve(second.id)
    assert two.file_counts.model_dump() == counts()
    assert two.usage_bytes == 0
    assert [file_id for file_id, _, _ in hits(sdk, first.id, MOONS_QUESTION)] == [recipe.id]
    assert hits(sdk, second.id, MOONS_QUESTION) == []
    assert [f.id for f in sdk.vector_stores.files.list(first.id)] == [recipe.id]
    sdk_error(lambda: sdk.vector_stores.files.retrieve(planet.id, vector_store_id=second.id), 404)


def test_deleting_a_file_while_it_is_indexed(sdk: openai.OpenAI) -> None:
    store = sdk.vector_stores.create(name="deleted early")
    file = upload(sdk, "large.txt", big_text(30).encode())
    keep, _ = add_file(sdk, store.id, *MATCH)
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
    sdk.files.delete(file.id)
    done = wait_store(sdk, store.id)
    assert done.file_counts.model_dump() == counts(completed=1)
    assert [f.id for f in sdk.vector_stores.files.list(store.id)] == [keep.id]
    found = hits(sdk, store.id, "lantern near the harbour", max_num_results=50)
    assert {file_id for file_id, _, _ in found} == {keep.id}


# -- async -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_upload_and_poll_and_search(aclient: openai.AsyncOpenAI) -> None:
    sdk = aclient.with_options(timeout=TIMEOUT)
    store = await sdk.vector_stores.create(name="async")
    with time_limit(WAIT, "async file_batches.upload_and_poll"):
        batch = await sdk.vector_stores.file_batches.upload_and_poll(
            store.id,
            files=[RECIPE, ("zorblax.html", PLANET_HTML.encode())],
            poll_interval_ms=POLL_MS,
        )
    assert (batch.status, batch.file_counts.model_dump()) == ("completed", counts(completed=2))
    page = await sdk.vector_stores.search(store.id, query=MOONS_QUESTION, max_num_results=1)
    assert len(page.data) == 1
    assert page.data[0].filename == "zorblax.html"
    assert MOONS_ANSWER in " ".join(page.data[0].content[0].text.split())
    listed = [f.id async for f in sdk.vector_stores.files.list(store.id)]
    assert len(listed) == 2
    assert page.data[0].file_id in listed
    deleted = await sdk.vector_stores.delete(store.id)
    assert (deleted.id, deleted.deleted) == (store.id, True)


# -- dedicated servers -------------------------------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_search_answers_while_a_large_file_is_indexed(start_server: Callable[..., Server]) -> None:
    """The one large document: indexing it embeds for many seconds in the background, and a search (which
    embeds its query on the same model) must not wait until it is done."""
    server = start_server()
    try:
        with make_client(server, timeout=TIMEOUT) as sdk:
            ready, (recipe,) = store_with(sdk, RECIPE)
            busy = sdk.vector_stores.create(name="large")
            large = upload(sdk, "large.txt", big_text(240).encode())  # about 6,500 tokens: 15 chunks
            sdk.vector_stores.files.create(vector_store_id=busy.id, file_id=large.id)
            time.sleep(1.0)  # the indexer is embedding it by now
            started = time.monotonic()
            try:
                found = hits(sdk.with_options(timeout=SEARCH_BUDGET), ready, "How do I make lemon pancakes?")
            except openai.APITimeoutError:
                pytest.fail(
                    f"a search took more than {SEARCH_BUDGET} s while another store's file was indexed"
                )
            elapsed = time.monotonic() - started
            assert [file_id for file_id, _, _ in found] == [recipe]
            assert elapsed < SEARCH_BUDGET
            # The search did overlap the indexing.
            assert sdk.vector_stores.files.retrieve(large.id, vector_store_id=busy.id).status == "in_progress"
    finally:
        server.kill()  # not stop(): the large file's embedding would hold up a graceful exit


@pytest.mark.backend("sqlite")
def test_indexing_resumes_after_a_crash(start_server: Callable[..., Server]) -> None:
    first = start_server()
    with make_client(first, timeout=TIMEOUT) as sdk:
        store = sdk.vector_stores.create(name="survivor", metadata={"k": "v"})
        ids = [upload(sdk, name, data).id for name, data in (RECIPE, PLANET_PDF)]
        batch = sdk.vector_stores.file_batches.create(store.id, file_ids=ids)
        # Killed before the indexer is through (its first file waits for the model to load).
        assert sdk.vector_stores.retrieve(store.id).file_counts.in_progress >= 1
        first.kill()

    second = Server(data_dir=first.data_dir, env=dict(first.env)).start()
    try:
        with make_client(second, timeout=TIMEOUT) as sdk:
            again = sdk.vector_stores.retrieve(store.id)
            assert (again.name, again.metadata, again.file_counts.total) == ("survivor", {"k": "v"}, 2)
            done = wait_batch(sdk, store.id, batch.id)
            assert (done.status, done.file_counts.model_dump()) == ("completed", counts(completed=2))
            assert sdk.vector_stores.retrieve(store.id).file_counts.model_dump() == counts(completed=2)
            found = hits(sdk, store.id, MOONS_QUESTION)
            assert [file_id for file_id, _, _ in found] == [ids[1], ids[0]]
            assert MOONS_ANSWER in found[0][2]
    finally:
        second.stop()


def test_file_and_batch_polls_carry_the_poll_hint(sdk: openai.OpenAI, http: httpx.Client) -> None:
    """The SDK's upload_and_poll / create_and_poll wait openai-poll-after-ms between retrievals (1 s
    without it): the hint makes them see an indexed file within a tenth of a second."""
    store = sdk.vector_stores.create(name="poll hint")
    file = upload(sdk, "hint.txt", b"a short note")
    batch = sdk.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[file.id])
    for path in (
        f"/v1/vector_stores/{store.id}/files/{file.id}",
        f"/v1/vector_stores/{store.id}/file_batches/{batch.id}",
    ):
        response = http.get(path)
        assert response.status_code == 200
        assert response.headers["openai-poll-after-ms"] == "100"

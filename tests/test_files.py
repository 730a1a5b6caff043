"""The Files API: upload, list, retrieve, download and delete, through the SDK and raw multipart.

Uploads are checked by value: the exact size, name and purpose come back, and the exact bytes come out
again (every byte value, megabytes of them, an empty file), with a content type from the file's name.
Refused uploads get a 400 (or 413 when too large) in OpenAI's error envelope that names the field, and
store nothing. Tests on the shared server only look at the files they made themselves.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import openai
import pytest
from openai.types import FileObject

from tests.conftest import make_client
from tests.envelope import ERROR_KEYS, Param, assert_error, sdk_error
from tests.harness import Server
from tests.openapi import assert_schema

TIMEOUT = 30.0  # seconds: an answer that takes longer than this is a hang
FILE_KEYS = {
    "id",
    "object",
    "bytes",
    "created_at",
    "expires_at",
    "filename",
    "purpose",
    "status",
    "status_details",
}
UPLOAD_PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
EMPTY_PAGE: dict[str, Any] = {
    "object": "list",
    "data": [],
    "first_id": None,
    "last_id": None,
    "has_more": False,
}
MIB = 1024 * 1024
EVERY_BYTE = bytes(range(256)) * 16 + bytes(range(255, -1, -1)) * 16

Part = tuple[str, str | None, bytes]  # form field name, file name (None: a plain field), value
TOO_LARGE: Param = (None, "file")  # the spec asks for a 413 in the envelope, and names no param


# -- helpers -----------------------------------------------------------------------------------------


class Response(Protocol):
    """An HTTP response: httpx's, or httpx2's, which the 3.x SDK's errors carry."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    def json(self) -> Any: ...


def now() -> int:
    return int(time.time())


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def upload(
    client: openai.OpenAI, filename: str, data: bytes, purpose: str = "assistants", **kwargs: Any
) -> FileObject:
    return client.files.create(file=(filename, data), purpose=purpose, **kwargs)  # type: ignore[arg-type]


def spec_view(file: dict[str, Any]) -> dict[str, Any]:
    """The spec types ``expires_at`` and ``status_details`` as non-null and optional (OpenAI leaves them
    out), while the SDK's models make them Optional and assistd sends null: the tests check those nulls
    by value and the rest against the schema."""
    return {k: v for k, v in file.items() if not (k in {"expires_at", "status_details"} and v is None)}


def multipart(*parts: Part) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with exactly ``parts``, for what the SDK never sends."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        head = ""
        if filename is not None:
            disposition += f'; filename="{filename}"'
            head = "Content-Type: application/octet-stream\r\n"
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{head}\r\n".encode())
        chunks.append(value + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), {"content-type": f"multipart/form-data; boundary={boundary}"}


def post_parts(http: httpx.Client, *parts: Part) -> httpx.Response:
    body, headers = multipart(*parts)
    return http.post("/v1/files", content=body, headers=headers, timeout=TIMEOUT)


def chunked_upload(size: int) -> tuple[Iterator[bytes], dict[str, str]]:
    """An upload of ``size`` bytes sent in 64 KiB pieces, without Content-Length."""
    boundary = secrets.token_hex(16)

    def pieces() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        remaining = size
        while remaining > 0:
            piece = min(64 * 1024, remaining)
            yield b"x" * piece
            remaining -= piece
        yield f"\r\n--{boundary}--\r\n".encode()

    return pieces(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def all_file_ids(client: openai.OpenAI, **kwargs: Any) -> list[str]:
    """Every file id, through the SDK's auto-pager."""
    return [file.id for file in client.files.list(**kwargs)]


def media_type(response: Response) -> str:
    value: str = response.headers["content-type"]
    return value.split(";")[0].strip().lower()


@pytest.fixture
def sdk(client: openai.OpenAI) -> openai.OpenAI:
    """The session's SDK client with a bounded timeout, so that a hang fails the test."""
    return client.with_options(timeout=TIMEOUT)


# -- upload ------------------------------------------------------------------------------------------


def test_upload_returns_the_file_object(sdk: openai.OpenAI) -> None:
    before = now()
    raw = sdk.files.with_raw_response.create(file=("notes.txt", b"hello, files\n"), purpose="assistants")
    after = now()
    assert raw.http_response.status_code == 200
    body = raw.http_response.json()
    assert set(body) == FILE_KEYS, body
    assert_schema("OpenAIFile", spec_view(body))
    assert body["id"].startswith("file-")
    assert len(body["id"]) > len("file-")
    assert body["object"] == "file"
    assert body["bytes"] == len(b"hello, files\n")
    assert isinstance(body["created_at"], int)
    assert before <= body["created_at"] <= after
    assert body["filename"] == "notes.txt"
    assert body["purpose"] == "assistants"
    assert body["status"] == "processed"
    assert body["expires_at"] is None
    assert body["status_details"] is None

    file = raw.parse()
    assert file.id == body["id"]
    assert file._request_id is not None
    assert file._request_id.startswith("req_")


def test_ids_are_unique(sdk: openai.OpenAI) -> None:
    ids = [upload(sdk, "same.txt", b"same").id for _ in range(5)]
    assert len(set(ids)) == 5
    assert all(file_id.startswith("file-") for file_id in ids)


def test_upload_from_an_open_file_and_from_a_path(sdk: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "mydata.jsonl"
    data = b'{"prompt": "a", "completion": "b"}\n' * 50
    path.write_bytes(data)
    with path.open("rb") as handle:
        opened = sdk.files.create(file=handle, purpose="fine-tune")
    from_path = sdk.files.create(file=path, purpose="user_data")
    for file, purpose in ((opened, "fine-tune"), (from_path, "user_data")):
        assert (file.filename, file.bytes, file.purpose, file.status) == (
            "mydata.jsonl",
            len(data),
            purpose,
            "processed",
        )
        assert sdk.files.content(file.id).read() == data
    assert opened.id != from_path.id


@pytest.mark.parametrize("purpose", UPLOAD_PURPOSES)
def test_every_upload_purpose_is_kept_and_filters_the_list(sdk: openai.OpenAI, purpose: str) -> None:
    file = upload(sdk, f"{purpose}.jsonl", b'{"a": 1}\n', purpose=purpose)
    assert file.purpose == purpose
    assert sdk.files.retrieve(file.id) == file
    listed = list(sdk.files.list(purpose=purpose))
    assert file.id in [f.id for f in listed]
    assert {f.purpose for f in listed} == {purpose}
    for other in UPLOAD_PURPOSES:
        if other != purpose:
            assert file.id not in all_file_ids(sdk, purpose=other)


def test_unicode_filename_is_kept(sdk: openai.OpenAI) -> None:
    name = "résumé 📄 (final) — 日本語.txt"
    file = upload(sdk, name, "contenu accentué".encode())
    assert file.filename == name
    assert sdk.files.retrieve(file.id).filename == name
    assert [f.filename for f in sdk.files.list() if f.id == file.id] == [name]
    assert sdk.files.content(file.id).read() == "contenu accentué".encode()


def test_filename_with_path_segments_writes_nothing_outside_the_store(
    sdk: openai.OpenAI, server: Server
) -> None:
    token = secrets.token_hex(8)
    escape = f"assistd-escape-{token}.txt"
    name = "../" * 12 + f"tmp/{escape}"
    file = upload(sdk, name, b"stay inside")
    assert file.filename == name
    assert sdk.files.content(file.id).read() == b"stay inside"
    assert not (Path("/tmp") / escape).exists()
    outside = [p for p in server.data_dir.parent.rglob(escape) if server.data_dir not in p.parents]
    assert outside == []


def test_empty_file(sdk: openai.OpenAI, http: httpx.Client) -> None:
    file = upload(sdk, "empty.txt", b"")
    assert (file.bytes, file.filename, file.status) == (0, "empty.txt", "processed")
    assert sdk.files.retrieve(file.id).bytes == 0
    assert sdk.files.content(file.id).read() == b""
    response = http.get(f"/v1/files/{file.id}/content")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("seconds", [3600, 86_400, 2_592_000])
def test_expires_after_sets_expires_at(sdk: openai.OpenAI, seconds: int) -> None:
    file = upload(sdk, "soon.txt", b"x", expires_after={"anchor": "created_at", "seconds": seconds})
    assert file.expires_at == file.created_at + seconds
    assert sdk.files.retrieve(file.id).expires_at == file.created_at + seconds
    body = sdk.files.with_raw_response.retrieve(file.id).http_response.json()
    assert body["expires_at"] == file.created_at + seconds
    assert_schema("OpenAIFile", spec_view(body))


def test_expires_after_as_raw_form_fields(http: httpx.Client) -> None:
    response = post_parts(
        http,
        ("purpose", None, b"batch"),
        ("expires_after[anchor]", None, b"created_at"),
        ("expires_after[seconds]", None, b"7200"),
        ("file", "requests.jsonl", b"{}\n"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["purpose"], body["bytes"], body["filename"]) == ("batch", 3, "requests.jsonl")
    assert body["expires_at"] == body["created_at"] + 7200


# -- refused uploads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose", ["nope", "assistants_output", "batch_output", "fine-tune-results", "", "ASSISTANTS"]
)
def test_bad_purpose_is_400(sdk: openai.OpenAI, purpose: str) -> None:
    before = all_file_ids(sdk)
    sdk_error(lambda: upload(sdk, "a.txt", b"x", purpose=purpose), 400, "purpose")
    assert all_file_ids(sdk) == before


@pytest.mark.parametrize(
    ("expires_after", "param"),
    [
        ({"anchor": "created_at", "seconds": 3599}, "expires_after[seconds]"),
        ({"anchor": "created_at", "seconds": 2_592_001}, "expires_after[seconds]"),
        ({"anchor": "created_at", "seconds": 0}, "expires_after[seconds]"),
        ({"anchor": "created_at", "seconds": -3600}, "expires_after[seconds]"),
        ({"anchor": "last_active_at", "seconds": 3600}, "expires_after[anchor]"),
    ],
)
def test_bad_expires_after_is_400(sdk: openai.OpenAI, expires_after: dict[str, Any], param: str) -> None:
    before = all_file_ids(sdk)
    sdk_error(lambda: upload(sdk, "a.txt", b"x", expires_after=expires_after), 400, param)
    assert all_file_ids(sdk) == before


MALFORMED_UPLOADS: list[tuple[str, list[Part], str]] = [
    ("no file", [("purpose", None, b"assistants")], "file"),
    ("file as a plain field", [("purpose", None, b"assistants"), ("file", None, b"not a file")], "file"),
    ("no purpose", [("file", "a.txt", b"x")], "purpose"),
    (
        "seconds not a number",
        [
            ("purpose", None, b"assistants"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"soon"),
            ("file", "a.txt", b"x"),
        ],
        "expires_after[seconds]",
    ),
    (
        "seconds not an integer",
        [
            ("purpose", None, b"assistants"),
            ("expires_after[anchor]", None, b"created_at"),
            ("expires_after[seconds]", None, b"3600.5"),
            ("file", "a.txt", b"x"),
        ],
        "expires_after[seconds]",
    ),
    (
        "seconds without anchor",
        [
            ("purpose", None, b"assistants"),
            ("expires_after[seconds]", None, b"3600"),
            ("file", "a.txt", b"x"),
        ],
        "expires_after[anchor]",
    ),
    (
        "anchor without seconds",
        [
            ("purpose", None, b"assistants"),
            ("expires_after[anchor]", None, b"created_at"),
            ("file", "a.txt", b"x"),
        ],
        "expires_after[seconds]",
    ),
]


@pytest.mark.parametrize(
    ("parts", "param"),
    [(p, param) for _, p, param in MALFORMED_UPLOADS],
    ids=[c[0] for c in MALFORMED_UPLOADS],
)
def test_malformed_upload_is_400_naming_the_field(
    sdk: openai.OpenAI, http: httpx.Client, parts: list[Part], param: str
) -> None:
    before = all_file_ids(sdk)
    assert_error(post_parts(http, *parts), 400, param)
    assert all_file_ids(sdk) == before


def test_multipart_without_any_part_is_400(sdk: openai.OpenAI, http: httpx.Client) -> None:
    before = all_file_ids(sdk)
    assert_error(post_parts(http), 400, ("file", "purpose"))
    assert all_file_ids(sdk) == before


@pytest.mark.parametrize("kind", ["json", "urlencoded", "empty"])
def test_upload_that_is_not_multipart_is_400(sdk: openai.OpenAI, http: httpx.Client, kind: str) -> None:
    before = all_file_ids(sdk)
    if kind == "json":
        response = http.post("/v1/files", json={"purpose": "assistants", "file": "aGVsbG8="})
    elif kind == "urlencoded":
        response = http.post("/v1/files", data={"purpose": "assistants", "file": "hello"})
    else:
        response = http.post("/v1/files")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert all_file_ids(sdk) == before


# -- retrieve and delete -----------------------------------------------------------------------------


def test_retrieve_returns_what_create_returned(sdk: openai.OpenAI) -> None:
    created = sdk.files.with_raw_response.create(file=("report.pdf", b"%PDF-1.4\n"), purpose="user_data")
    created_body = created.http_response.json()
    fetched = sdk.files.with_raw_response.retrieve(created_body["id"])
    assert fetched.http_response.json() == created_body
    assert set(fetched.http_response.json()) == FILE_KEYS
    assert sdk.files.retrieve(created_body["id"]) == created.parse()


@pytest.mark.parametrize("file_id", ["file-missing", "file-000000000000000000000000", "not-a-file-id"])
def test_unknown_file_is_404_for_every_method(sdk: openai.OpenAI, http: httpx.Client, file_id: str) -> None:
    for call in (
        lambda: sdk.files.retrieve(file_id),
        lambda: sdk.files.delete(file_id),
        lambda: sdk.files.content(file_id),
    ):
        error = sdk_error(call, 404)
        assert file_id in error["message"], error
    for method, path in (
        ("GET", f"/v1/files/{file_id}"),
        ("DELETE", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
    ):
        assert_error(http.request(method, path), 404)


def test_delete(sdk: openai.OpenAI, http: httpx.Client) -> None:
    keep = upload(sdk, "keep.txt", b"keep me")
    gone = upload(sdk, "gone.txt", b"delete me")
    raw = sdk.files.with_raw_response.delete(gone.id)
    body = raw.http_response.json()
    assert body == {"id": gone.id, "object": "file", "deleted": True}
    assert_schema("DeleteFileResponse", body)
    deleted = raw.parse()
    assert (deleted.id, deleted.object, deleted.deleted) == (gone.id, "file", True)

    for call in (
        lambda: sdk.files.retrieve(gone.id),
        lambda: sdk.files.content(gone.id),
        lambda: sdk.files.delete(gone.id),
    ):
        error = sdk_error(call, 404)
        assert gone.id in error["message"], error
    assert_error(http.get(f"/v1/files/{gone.id}/content"), 404)
    ids = all_file_ids(sdk)
    assert gone.id not in ids
    assert keep.id in ids
    assert sdk.files.retrieve(keep.id) == keep
    assert sdk.files.content(keep.id).read() == b"keep me"


# -- list --------------------------------------------------------------------------------------------


def test_list_page_fields_and_cursor(sdk: openai.OpenAI, http: httpx.Client) -> None:
    ids = [upload(sdk, f"page{i}.txt", f"page {i}".encode()).id for i in range(3)]

    body = http.get("/v1/files", params={"limit": 2}).json()
    assert_schema("ListFilesResponse", {**body, "data": [spec_view(f) for f in body["data"]]})
    assert body["object"] == "list"
    assert [f["id"] for f in body["data"]] == [ids[2], ids[1]]  # newest first by default
    assert [set(f) for f in body["data"]] == [FILE_KEYS, FILE_KEYS]
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[2], ids[1], True)
    assert [f["filename"] for f in body["data"]] == ["page2.txt", "page1.txt"]
    assert [f["bytes"] for f in body["data"]] == [6, 6]

    body = http.get("/v1/files", params={"limit": 2, "order": "asc", "after": ids[0]}).json()
    assert [f["id"] for f in body["data"]] == ids[1:]
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[1], ids[2], False)

    body = http.get("/v1/files", params={"limit": 1, "order": "desc", "after": ids[2]}).json()
    assert [f["id"] for f in body["data"]] == [ids[1]]
    assert body["has_more"] is True

    page = sdk.files.list(limit=2, order="asc", after=ids[1])
    assert [f.id for f in page.data] == [ids[2]]
    assert page.has_more is False


def test_default_list_is_every_file_newest_first(sdk: openai.OpenAI, http: httpx.Client) -> None:
    ours = [upload(sdk, f"all{i}.bin", bytes([i]) * (i + 1)).id for i in range(4)]
    body = http.get("/v1/files").json()
    listed = [f["id"] for f in body["data"]]
    assert body["has_more"] is False
    assert len(listed) == len(set(listed))
    assert [i for i in listed if i in ours] == ours[::-1]
    assert (body["first_id"], body["last_id"]) == (listed[0], listed[-1])
    created = [f["created_at"] for f in body["data"]]
    assert created == sorted(created, reverse=True)
    # The SDK's auto-pager, in small pages, walks the very same list, in both orders.
    assert all_file_ids(sdk, limit=2) == listed
    assert all_file_ids(sdk, limit=3, order="asc") == listed[::-1]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_auto_pagination_sees_each_file_once(sdk: openai.OpenAI, limit: int) -> None:
    ours = [upload(sdk, f"walk{i}.txt", b"w", purpose="vision").id for i in range(5)]
    walked = all_file_ids(sdk, limit=limit, purpose="vision")
    assert len(walked) == len(set(walked))
    assert [i for i in walked if i in ours] == ours[::-1]
    ascending = all_file_ids(sdk, limit=limit, purpose="vision", order="asc")
    assert ascending == walked[::-1]


def test_largest_limit_is_accepted(http: httpx.Client) -> None:
    response = http.get("/v1/files", params={"limit": 10000})
    assert response.status_code == 200, response.text
    assert response.json()["has_more"] is False


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"order": "sideways"}, "order"),
    ],
)
def test_bad_list_parameters_are_400(http: httpx.Client, params: dict[str, Any], param: str) -> None:
    assert_error(http.get("/v1/files", params=params), 400, param)


# -- content -----------------------------------------------------------------------------------------


def test_content_round_trips_every_byte_value(sdk: openai.OpenAI, http: httpx.Client) -> None:
    file = upload(sdk, "every-byte.bin", EVERY_BYTE)
    assert file.bytes == len(EVERY_BYTE) == 8192
    content = sdk.files.content(file.id)
    assert content.read() == EVERY_BYTE
    assert content.content == EVERY_BYTE
    response = http.get(f"/v1/files/{file.id}/content")
    assert response.status_code == 200
    assert response.content == EVERY_BYTE
    assert media_type(response) == "application/octet-stream"
    # Raw multipart with a body that contains the boundary's dashes and CRLFs too.
    tricky = b"\r\n--\r\n" + EVERY_BYTE + b"\r\n--"
    raw = post_parts(http, ("purpose", None, b"assistants"), ("file", "tricky.bin", tricky))
    assert raw.status_code == 200, raw.text
    assert raw.json()["bytes"] == len(tricky)
    assert http.get(f"/v1/files/{raw.json()['id']}/content").content == tricky


def test_content_of_a_few_megabytes(sdk: openai.OpenAI, http: httpx.Client) -> None:
    data = random_bytes(3 * MIB + 12345, seed=3)
    file = upload(sdk, "big.dat", data)
    assert file.bytes == len(data)
    assert sdk.files.retrieve(file.id).bytes == len(data)
    assert sdk.files.content(file.id).read() == data
    response = http.get(f"/v1/files/{file.id}/content", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == data
    if "content-length" in response.headers:
        assert int(response.headers["content-length"]) == len(data)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("notes.txt", "text/plain"),
        ("report.pdf", "application/pdf"),
        ("data.json", "application/json"),
        ("page.html", "text/html"),
        ("image.png", "image/png"),
        ("archive.unknownext", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ],
)
def test_content_type_follows_the_filename(
    sdk: openai.OpenAI, http: httpx.Client, filename: str, expected: str
) -> None:
    data = b'{"k": "v"}' if filename.endswith(".json") else b"some content\n"
    file = upload(sdk, filename, data)
    response = http.get(f"/v1/files/{file.id}/content")
    assert response.status_code == 200
    assert media_type(response) == expected, response.headers
    assert response.content == data
    raw = sdk.files.with_raw_response.content(file.id)
    assert media_type(raw.http_response) == expected


def test_deprecated_retrieve_content(sdk: openai.OpenAI) -> None:
    if not hasattr(sdk.files, "retrieve_content"):
        pytest.skip("this SDK has no files.retrieve_content")
    text = "héllo, wörld\nline two\n"
    file = upload(sdk, "hello.txt", text.encode())
    assert sdk.files.retrieve_content(file.id) == text


# -- async -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_upload_retrieve_content_delete(aclient: openai.AsyncOpenAI) -> None:
    data = random_bytes(70_000, seed=9)
    file = await aclient.files.create(file=("async.bin", data), purpose="assistants")
    assert (file.bytes, file.filename, file.purpose, file.status) == (
        len(data),
        "async.bin",
        "assistants",
        "processed",
    )
    assert await aclient.files.retrieve(file.id) == file
    assert (await aclient.files.content(file.id)).content == data
    assert file.id in [f.id async for f in aclient.files.list(limit=3)]
    deleted = await aclient.files.delete(file.id)
    assert (deleted.id, deleted.deleted) == (file.id, True)
    with pytest.raises(openai.NotFoundError):
        await aclient.files.retrieve(file.id)


@pytest.mark.anyio
async def test_concurrent_uploads(aclient: openai.AsyncOpenAI) -> None:
    payloads = {f"part-{i}.bin": random_bytes(i * 7919, seed=100 + i) for i in range(10)}
    files = await asyncio.gather(
        *(aclient.files.create(file=(name, data), purpose="user_data") for name, data in payloads.items())
    )
    assert len({f.id for f in files}) == 10
    for file, (name, data) in zip(files, payloads.items(), strict=True):
        assert (file.filename, file.bytes) == (name, len(data))

    listed = {f.id: f async for f in aclient.files.list(limit=4)}
    for file in files:
        assert listed[file.id] == file
    contents = await asyncio.gather(*(aclient.files.content(f.id) for f in files))
    assert [c.content for c in contents] == list(payloads.values())


# -- dedicated servers: limits and restarts ----------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_file_over_the_size_limit_is_413_and_not_stored(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_MAX_FILE_BYTES=str(MIB))
    with (
        make_client(server, timeout=TIMEOUT) as sdk,
        httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer sk-test"}, timeout=TIMEOUT
        ) as raw,
    ):
        assert raw.get("/v1/files").json() == EMPTY_PAGE
        assert raw.get("/v1/files", params={"purpose": "assistants_output"}).json() == EMPTY_PAGE

        # Exactly the limit: accepted (the multipart body around it is larger, and that is fine).
        data = random_bytes(MIB, seed=1)
        accepted = upload(sdk, "exactly.bin", data)
        assert accepted.bytes == MIB
        assert sdk.files.content(accepted.id).read() == data

        # One byte more, through the SDK, raw, and streamed without Content-Length.
        error = sdk_error(lambda: upload(sdk, "over.bin", data + b"!"), 413, TOO_LARGE)
        assert str(MIB) in error["message"], error
        huge = post_parts(raw, ("purpose", None, b"assistants"), ("file", "huge.bin", b"x" * (4 * MIB)))
        assert_error(huge, 413, TOO_LARGE)
        pieces, headers = chunked_upload(3 * MIB)
        response = raw.post("/v1/files", content=pieces, headers=headers)
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert_error(response, 413, TOO_LARGE)

        # Nothing of the refused uploads was stored, and the server still serves.
        assert all_file_ids(sdk) == [accepted.id]
        assert raw.get("/health").status_code == 200
        assert upload(sdk, "after.txt", b"still here").bytes == 10


@pytest.mark.backend("sqlite")
def test_json_body_limit_does_not_apply_to_uploads(start_server: Callable[..., Server]) -> None:
    server = start_server(ASSISTD_MAX_BODY_BYTES="65536", ASSISTD_MAX_FILE_BYTES=str(MIB))
    with make_client(server, timeout=TIMEOUT) as sdk:
        data = random_bytes(500_000, seed=5)
        file = upload(sdk, "half-a-megabyte.bin", data)
        assert file.bytes == 500_000
        assert sdk.files.content(file.id).read() == data
        # ... while JSON bodies are still held to their own limit.
        sdk_error(lambda: sdk.beta.assistants.create(model="m", instructions="x" * 100_000), 413)
        assert all_file_ids(sdk) == [file.id]


@pytest.mark.backend("sqlite")
def test_files_survive_a_restart(start_server: Callable[..., Server]) -> None:
    first = start_server(ASSISTD_API_KEYS="sk-test")
    payloads = {"every-byte.bin": EVERY_BYTE, "empty.txt": b"", "notes.txt": b"kept\n"}
    with make_client(first, timeout=TIMEOUT) as sdk:
        files = [upload(sdk, name, data) for name, data in payloads.items()]
        doomed = upload(sdk, "doomed.txt", b"deleted before the restart")
        sdk.files.delete(doomed.id)
        listed = all_file_ids(sdk)
        # Files need the key like everything else.
        with httpx.Client(base_url=first.url, timeout=TIMEOUT) as anonymous:
            assert (
                anonymous.post(
                    "/v1/files", files={"file": ("a.txt", b"x")}, data={"purpose": "assistants"}
                ).status_code
                == 401
            )
            assert anonymous.get(f"/v1/files/{files[0].id}/content").status_code == 401
            assert anonymous.get("/v1/files").status_code == 401
        assert all_file_ids(sdk) == listed
    first.stop()

    second = Server(data_dir=first.data_dir, env=dict(first.env)).start()
    try:
        with make_client(second, timeout=TIMEOUT) as sdk:
            assert all_file_ids(sdk) == listed == [f.id for f in files][::-1]
            for file, data in zip(files, payloads.values(), strict=True):
                assert sdk.files.retrieve(file.id) == file
                assert sdk.files.content(file.id).read() == data
            sdk_error(lambda: sdk.files.retrieve(doomed.id), 404)
            sdk_error(lambda: sdk.files.content(doomed.id), 404)
            assert sdk.files.delete(files[0].id).deleted is True
            sdk_error(lambda: sdk.files.content(files[0].id), 404)
            assert all_file_ids(sdk) == [files[2].id, files[1].id]
    finally:
        second.stop()

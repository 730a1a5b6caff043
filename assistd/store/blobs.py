"""Where file contents live: a small interface and its three implementations.

Contents are written once (under a key the caller chooses, the file id) and never changed; a write that
fails leaves nothing behind. ``LocalBlobStore`` keeps them on this machine's disk (one process, or
processes that share the data dir); ``PostgresBlobStore`` in the database and ``S3BlobStore`` in an
S3-compatible bucket, where every API node and worker reaches them. ``store.blob_stores`` picks one
from the settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import anyio
from sqlalchemy import delete, func, insert, select

from assistd.store import tables
from assistd.store.database import Database

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

CHUNK_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)


class TooLarge(Exception):
    """The content is larger than the caller allowed; nothing was stored."""


class BlobStore(Protocol):
    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        """Stores everything ``source`` holds from its current position under ``key``; its size in
        bytes. ``TooLarge`` beyond ``limit`` bytes."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The content, in chunks. ``FileNotFoundError`` if there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the content; nothing happens if there is none."""
        ...

    async def close(self) -> None:
        """Releases what the store holds (connections); called once, at shutdown."""
        ...


async def _read_source(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes of ``source``, fewer only at its end; read in a worker thread, since a
    spooled upload may be on disk."""

    def read() -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted > 0 and (part := source.read(wanted)):
            parts.append(part)
            wanted -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    return await anyio.to_thread.run_sync(read)


class LocalBlobStore:
    """One file per key under ``root``, written to a temporary file first and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """Where the content of ``key`` lies (for a copy that need not pass through memory)."""
        # Keys are server-made ids; two levels of folders keep directories small.
        return self.root / key[-2:] / key

    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        return await anyio.to_thread.run_sync(self._save, key, source, limit)

    def _save(self, key: str, source: BinaryIO, limit: int) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".upload-", delete=False) as sink:
            try:
                while chunk := source.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            except BaseException:
                sink.close()
                os.unlink(sink.name)
                raise
        os.replace(sink.name, target)
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(key), "rb") as content:
            while chunk := await content.read(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, key)

    def _delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    async def close(self) -> None:
        pass


class PostgresBlobStore:
    """Contents in the ``file_blobs`` table, in parts of ``CHUNK_BYTES``: all of a file's parts are
    written in one transaction, and read back one part per query, each on a connection taken from the
    pool only for that query, so a slow reader holds none while it waits.

    ``fallback``: a local store whose contents predate this one (a server that kept files on its disk
    before it kept them in its database); keys missing from the table are read there, and deleted
    there too.
    """

    def __init__(self, database: Database, *, fallback: LocalBlobStore | None = None) -> None:
        self.database = database
        self.fallback = fallback

    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        blobs = tables.file_blobs
        size = 0
        part = 0
        # TooLarge, or any other exception, leaves the block and so rolls everything back.
        async with self.database.write() as conn:
            await conn.execute(delete(blobs).where(blobs.c.key == key))
            while True:
                chunk = await _read_source(source, CHUNK_BYTES)
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                if chunk or part == 0:  # an empty file is one empty part, so that it exists
                    await conn.execute(insert(blobs).values(key=key, part=part, data=chunk))
                if len(chunk) < CHUNK_BYTES:
                    return size
                part += 1

    async def read(self, key: str) -> AsyncIterator[bytes]:
        blobs = tables.file_blobs
        async with self.database.read() as conn:
            parts = await conn.scalar(select(func.count()).select_from(blobs).where(blobs.c.key == key))
            first = await conn.scalar(select(blobs.c.data).where(blobs.c.key == key, blobs.c.part == 0))
        if not parts or first is None:
            if self.fallback is None:
                raise FileNotFoundError(key)
            async for chunk in self.fallback.read(key):
                yield chunk
            return
        yield first
        for part in range(1, parts):
            async with self.database.read() as conn:
                data = await conn.scalar(select(blobs.c.data).where(blobs.c.key == key, blobs.c.part == part))
            if data is None:  # deleted while it was read: better a broken download than a short one
                raise FileNotFoundError(key)
            yield data

    async def delete(self, key: str) -> None:
        blobs = tables.file_blobs
        async with self.database.write() as conn:
            await conn.execute(delete(blobs).where(blobs.c.key == key))
        if self.fallback is not None:
            await self.fallback.delete(key)

    async def close(self) -> None:
        pass  # the database is the application's, closed by it


class S3BlobStore:
    """Contents as objects of an S3-compatible bucket, named ``prefix`` + key. Contents up to one part
    are put in one request; larger ones are uploaded in parts of ``part_bytes`` (multipart upload: one
    part in memory at a time), and the upload is aborted if anything fails, so no object and no parts
    are left. Reads stream the object's body.

    ``open`` makes one client (aiobotocore) for the store's lifetime; credentials come from the
    standard AWS sources (environment, shared config and credentials files, instance roles).
    """

    PART_BYTES = 8 * 1024 * 1024  # S3 wants at least 5 MiB for every part but the last

    def __init__(
        self, client: S3Client, resources: contextlib.AsyncExitStack, bucket: str, *, prefix: str = ""
    ) -> None:
        self.client = client
        self._resources = resources
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = self.PART_BYTES

    @classmethod
    async def open(
        cls,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> S3BlobStore:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            # Checksums only where the API requires them: since botocore 1.36 every upload carries a
            # CRC32 by default, which many S3-compatible servers reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # Path-style URLs (endpoint/bucket/key) for S3-compatible servers, whose host names often
            # have no wildcard DNS for bucket subdomains.
            s3={"addressing_style": "path"} if endpoint_url else None,
            # A download holds a connection while its client reads; allow many at once.
            max_pool_connections=64,
        )
        resources = contextlib.AsyncExitStack()
        client = await resources.enter_async_context(
            get_session().create_client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
        )
        return cls(client, resources, bucket, prefix=prefix)

    def _name(self, key: str) -> str:
        return self.prefix + key

    async def save(self, key: str, source: BinaryIO, *, limit: int) -> int:
        name = self._name(key)
        chunk = await _read_source(source, self.part_bytes)
        if len(chunk) > limit:
            raise TooLarge
        if len(chunk) < self.part_bytes:
            await self.client.put_object(Bucket=self.bucket, Key=name, Body=chunk)
            return len(chunk)
        upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = upload["UploadId"]
        try:
            size = 0
            parts: list[CompletedPartTypeDef] = []
            while chunk:
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                number = len(parts) + 1
                uploaded = await self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": uploaded["ETag"], "PartNumber": number})
                chunk = await _read_source(source, self.part_bytes)
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
                except Exception:
                    # The bucket's lifecycle rules, if any, remove it later.
                    logger.exception("could not abort the multipart upload of %s", name)
            raise
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    async def close(self) -> None:
        await self._resources.aclose()

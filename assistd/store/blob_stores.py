"""The blob store the settings ask for (``ASSISTD_BLOB_STORE``, ``ASSISTD_S3_*``).

``blob_store_kind`` is called when the application is made, so that a configuration that cannot work
stops the start with a ``ConfigError`` naming the setting; ``open_blob_store`` builds the store once the
database is there.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Literal

from assistd.backends.routing_config import ConfigError
from assistd.config import Settings
from assistd.store.blobs import BlobStore, LocalBlobStore, PostgresBlobStore, S3BlobStore
from assistd.store.database import Database, is_sqlite

logger = logging.getLogger(__name__)

Kind = Literal["local", "postgres", "s3"]


def blob_store_kind(settings: Settings) -> Kind:
    """Where file contents live with these settings; ``ConfigError`` for settings that cannot work."""
    on_sqlite = is_sqlite(settings.effective_database_url)
    if settings.blob_store == "auto":
        return "local" if on_sqlite else "postgres"
    if settings.blob_store == "postgres" and on_sqlite:
        raise ConfigError(
            "ASSISTD_BLOB_STORE=postgres needs a PostgreSQL database (ASSISTD_DATABASE_URL); "
            "with SQLite, use 'local' or 's3'"
        )
    if settings.blob_store == "s3":
        if not settings.s3_bucket:
            raise ConfigError("ASSISTD_BLOB_STORE=s3 needs ASSISTD_S3_BUCKET, the bucket to keep files in")
        if importlib.util.find_spec("aiobotocore") is None:
            raise ConfigError(
                "ASSISTD_BLOB_STORE=s3 needs the s3 extra, which is not installed: pip install 'assistd[s3]'"
            )
    return settings.blob_store


async def open_blob_store(settings: Settings, database: Database) -> BlobStore:
    """The store for these settings; the caller closes it (``close``) at shutdown."""
    kind = blob_store_kind(settings)
    local = LocalBlobStore(settings.data_dir / "files")
    if kind == "local":
        return local
    if kind == "postgres":
        # Files a server stored on its disk before it kept them in the database stay readable.
        if local.root.is_dir():
            logger.info("file contents are stored in the database; older ones are read from %s", local.root)
            return PostgresBlobStore(database, fallback=local)
        return PostgresBlobStore(database)
    assert settings.s3_bucket  # checked by blob_store_kind
    return await S3BlobStore.open(
        settings.s3_bucket,
        prefix=settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
    )

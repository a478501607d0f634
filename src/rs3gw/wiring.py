"""The composition root: settings → stores → engine → ASGI app. Nothing else builds objects."""

from __future__ import annotations

import os

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore, parse_compression
from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.config import SETTINGS_JSON_ENV, Settings, settings_from_json
from rs3gw.engine import Engine
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.model import Account, Owner
from rs3gw.protocol.app import S3App


def accounts(settings: Settings) -> list[Account]:
    return [Account(Owner.for_account(u.name), u.access_key, u.secret_key) for u in settings.users]


def with_dedup(inner: BlobStore, settings: Settings) -> BlobStore:
    """Deduplication sits above compression; once a data dir has a chunk index it stays wrapped,
    so manifests written while dedup was on still read after it is turned off."""
    index = settings.data_dir / "dedup.db"
    if not settings.dedup_enabled and not index.exists():
        return inner
    cfg = DedupConfig(
        settings.dedup_enabled,
        settings.dedup_block_size,
        ChunkingAlgorithm(settings.dedup_algorithm),
        settings.dedup_min_object_size,
    )
    return DedupBlobStore(inner, index, cfg, settings.fsync)


def build_blobs(settings: Settings) -> tuple[LocalBlobStore, BlobStore]:
    """The blob stack (and its bottom, for temp-file cleanup); ``rs3gw fsck`` reads through the same."""
    local = LocalBlobStore(settings.data_dir, fsync=settings.fsync)
    # Order: dedup -> compress -> backend. Compression always wraps, even when off, so blobs
    # written while it was on still read back.
    compressed = CompressedBlobStore(local, parse_compression(settings.compression))
    return local, with_dedup(compressed, settings)


def build_engine(settings: Settings) -> Engine:
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    if settings.metadata != "sqlite" and not settings.metadata.startswith("sqlite:"):
        raise SystemExit(f"rs3gw: metadata backend {settings.metadata!r} is not available in this build")
    local, blobs = build_blobs(settings)
    local.clean_tmp()
    store = SqliteStore(data / "meta.db", fsync=settings.fsync)
    return Engine(store, blobs, settings.region, settings.max_object_size)


def build_app(settings: Settings) -> S3App:
    return S3App(build_engine(settings), accounts(settings), settings.region, settings.domain)


def app_factory() -> S3App:
    """For ``uvicorn --factory`` with several workers: settings travel in the environment."""
    return build_app(settings_from_json(os.environ[SETTINGS_JSON_ENV]))

"""The composition root: settings → stores → engine → ASGI app. Nothing else builds objects."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from uvicorn.config import STARTUP_FAILURE

from rs3gw.analytics.recorder import RequestAnalytics
from rs3gw.analytics.routes import AnalyticsApi
from rs3gw.auth.generation import open_generation
from rs3gw.auth.users import Iam, KeyRing
from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore, parse_compression
from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.directio import DirectIO
from rs3gw.blobs.encrypted import EncryptedBlobStore
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.blobs.predictive_cache import PredictiveCacheStore
from rs3gw.blobs.tiered import TieredBlobStore
from rs3gw.config import SETTINGS_JSON_ENV, ConfigError, Settings, settings_from_json
from rs3gw.console import ConsoleSite
from rs3gw.engine import Engine
from rs3gw.engine.lifecycle import LifecycleWorker
from rs3gw.engine.zerocopy import ZeroCopy
from rs3gw.meta.dsn import split_params
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore
from rs3gw.model import Account
from rs3gw.monitoring import with_json_logs, with_metrics, with_scrubber
from rs3gw.protocol import metrics
from rs3gw.protocol.admin_buckets import bucket_routes
from rs3gw.protocol.admin_registry import registry_routes
from rs3gw.protocol.admin_storage import storage_report_routes
from rs3gw.protocol.admin_users import user_routes
from rs3gw.protocol.app import S3App
from rs3gw.tracing import build_tracer
from rs3gw.transform import TransformService
from rs3gw.worker_parent import die_with_parent


def accounts(settings: Settings) -> list[Account]:
    return [Account(u.owner, u.access_key, u.secret_key) for u in settings.users]


def with_dedup(inner: BlobStore, settings: Settings) -> BlobStore:
    """Deduplication sits above compression; once a data dir has a chunk index it stays wrapped,
    so manifests written while dedup was on still read after it is turned off.

    With PostgreSQL metadata the chunk index lives in that database (``dedup_*`` tables), whatever
    the backend: gateways sharing the database and an upstream see one chunk table and refcount it
    with row locks. A ``dedup.db`` holding chunks then is refused, not silently ignored."""
    index = settings.data_dir / "dedup.db"
    if settings.metadata.startswith(("postgresql://", "postgres://")):
        from rs3gw.blobs.chunk_index_pg import PostgresChunkIndex, has_dedup_state
        from rs3gw.blobs.chunk_index_sqlite import holds_state

        if holds_state(index):
            raise SystemExit(
                f"rs3gw: {index} holds a SQLite chunk index, but with PostgreSQL metadata the chunk "
                "index lives in PostgreSQL: start this data directory with its SQLite metadata"
            )
        dsn = split_params(settings.metadata)[0]
        if not settings.dedup_enabled and not has_dedup_state(dsn):
            return inner
        return DedupBlobStore(inner, lambda: PostgresChunkIndex(dsn), dedup_config(settings), settings.fsync)
    if not settings.dedup_enabled and not index.exists():
        return inner
    return DedupBlobStore(inner, index, dedup_config(settings), settings.fsync)


def dedup_config(settings: Settings) -> DedupConfig:
    return DedupConfig(
        settings.dedup_enabled,
        settings.dedup_block_size,
        ChunkingAlgorithm(settings.dedup_algorithm),
        settings.dedup_min_object_size,
    )


# The serving process's dedup settings, for offline commands that write blobs (``rs3gw heal run``):
# ``--dedup`` and its sizes are often given to ``serve`` only (flags, its environment), and a repair
# written with other settings would store the object undeduplicated or cut into chunks no other
# object shares. Written by every start of a server whose stack deduplicates (or reads manifests),
# removed by one without a chunk index.
DEDUP_RECORD = Path(".rs3gw") / "dedup-settings.json"
_DEDUP_KEYS = ("dedup_enabled", "dedup_block_size", "dedup_algorithm", "dedup_min_object_size")


def record_dedup_settings(settings: Settings) -> None:
    """Persist ``settings``' dedup fields in the data dir, atomically (workers write the same)."""
    path = settings.data_dir / DEDUP_RECORD
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dedup-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({k: getattr(settings, k) for k in _DEDUP_KEYS}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_served_dedup(settings: Settings) -> Settings:
    """``settings`` with the dedup fields the data dir's server last started with, so an offline
    writer stores data as that server does; unchanged when there is no (valid) record."""
    try:
        doc = json.loads((settings.data_dir / DEDUP_RECORD).read_text())
        served = replace(settings, **{k: doc[k] for k in _DEDUP_KEYS})
        dedup_config(served)  # a hand-edited or truncated record is not used
    except (OSError, ValueError, KeyError, TypeError):
        return settings
    if not isinstance(served.dedup_enabled, bool):
        return settings
    return served


def build_backend(settings: Settings) -> BlobStore:
    """The bottom of the stack: the data dir, or a bucket of an S3-compatible upstream."""
    if settings.backend_type == "local":
        # [storage.zerocopy] direct_io / mmap: O_DIRECT writes from the threshold, mapped long reads
        direct = DirectIO(settings.zerocopy_direct_io_threshold) if settings.zerocopy_direct_io else None
        return LocalBlobStore(
            settings.data_dir, settings.fsync, direct, settings.zerocopy_mmap, settings.small_blob_max
        )
    if settings.backend_type in ("gcs", "azure"):
        return build_cloud_backend(settings)
    from rs3gw.blobs.s3 import S3BackendConfig, S3BlobStore  # botocore loads only when asked for

    cfg = S3BackendConfig(
        bucket=settings.backend_bucket,
        endpoint=settings.backend_endpoint,
        prefix=settings.backend_prefix,
        region=settings.backend_region or "us-east-1",
        access_key=settings.backend_access_key,
        secret_key=settings.backend_secret_key,
    )
    s3 = S3BlobStore(cfg)
    try:
        s3.check()
    except Exception as e:  # botocore's many kinds: unreachable, forbidden, no such bucket
        where = f"{cfg.endpoint or 'AWS S3'} bucket {cfg.bucket!r}"
        raise SystemExit(f"rs3gw: s3 backend {where} is not usable: {e}") from None
    return s3


def build_cloud_backend(settings: Settings) -> BlobStore:
    """A Google Cloud Storage bucket or an Azure container; each SDK loads only when asked for."""
    try:
        if settings.backend_type == "gcs":
            from rs3gw.blobs.gcs import GCSBackendConfig, GCSBlobStore

            gcs = GCSBlobStore(
                GCSBackendConfig(
                    bucket=settings.backend_bucket,
                    prefix=settings.backend_prefix,
                    project=settings.backend_project,
                    endpoint=settings.backend_endpoint,
                    credentials_file=settings.backend_credentials_file,
                )
            )
            gcs.check()
            return gcs
        from rs3gw.blobs.azure import AzureBackendConfig, AzureBlobStore

        azure = AzureBlobStore(
            AzureBackendConfig(
                container=settings.backend_bucket,
                prefix=settings.backend_prefix,
                connection_string=settings.backend_connection_string,
                account_url=settings.backend_endpoint,
                account_name=settings.backend_access_key,
                account_key=settings.backend_secret_key,
            )
        )
        azure.check()
        return azure
    except ImportError as e:
        extra = settings.backend_type
        raise SystemExit(
            f"rs3gw: the {extra} backend needs its SDK: pip install 'rs3gw[{extra}]' ({e})"
        ) from None
    except Exception as e:  # the SDKs' many kinds: unreachable, forbidden, no such bucket, bad key
        where = f"{settings.backend_type} backend bucket {settings.backend_bucket!r}"
        raise SystemExit(f"rs3gw: {where} is not usable: {e}") from None


def build_blobs(settings: Settings) -> tuple[BlobStore, BlobStore]:
    """The blob stack (and its bottom, for temp-file cleanup); ``rs3gw fsck`` reads through the same."""
    backend = build_backend(settings)
    tiered = with_tiers(backend, settings)
    # Order: dedup -> compress -> encrypt -> [tiers] -> backend. Compression and encryption always wrap, even
    # when off, so blobs written while they were on still read back.
    encrypted = EncryptedBlobStore(tiered, LocalKeyProvider(settings.data_dir), settings.encryption_cipher)
    compressed = CompressedBlobStore(encrypted, parse_compression(settings.compression))
    return backend, with_dedup(compressed, settings)


def with_tiers(backend: BlobStore, settings: Settings) -> BlobStore:
    """Archive tier directories ([tiers] glacier / deep_archive, default DATA/tiers/<name>) sit right
    above a local backend, so archived bytes keep their ids and every upper layer reads them as-is."""
    if not isinstance(backend, LocalBlobStore):
        return backend  # archived objects of an s3 backend stay in place (still refused until restored)
    loc = settings.tiers.locations
    names = ("glacier", "deep_archive")
    dirs = {name: Path(loc.get(name) or settings.data_dir / "tiers" / name) for name in names}
    return TieredBlobStore(backend, dirs, settings.fsync)


def _tiered(blobs: BlobStore) -> TieredBlobStore | None:
    layer: object = blobs
    while layer is not None:
        if isinstance(layer, TieredBlobStore):
            return layer
        layer = getattr(layer, "inner", None)
    return None


def build_engine(settings: Settings) -> Engine:
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    store = build_store(settings)
    backend, blobs = build_blobs(settings)
    if isinstance(backend, LocalBlobStore):
        backend.clean_tmp()
    engine = Engine(store, blobs, settings.region, settings.max_object_size)
    engine.read_cache = with_predictive_cache(blobs, settings)
    engine.default_sse = "AES256" if settings.encryption_default == "AES256" else ""
    engine.sse_c_over_http = settings.encryption_sse_c_over_http
    engine.read_check.enabled = settings.verify_on_read
    engine.zerocopy = ZeroCopy(settings.zerocopy_enabled, settings.zerocopy_min_size, settings.zerocopy_mmap)
    if isinstance(blobs, DedupBlobStore):
        blobs.verify_blocks = settings.verify_on_read
    engine.tiers.configure(settings.tiers, settings.lifecycle_day_seconds, _tiered(blobs))
    return engine


def build_store(settings: Settings) -> MetadataStore:
    """SQLite inside the data dir, or a PostgreSQL database that several gateways can share."""
    if settings.metadata.startswith(("postgresql://", "postgres://")):
        from rs3gw.meta.postgres import PostgresStore  # psycopg loads only when asked for

        return PostgresStore(settings.metadata)
    if settings.metadata != "sqlite" and not settings.metadata.startswith("sqlite:"):
        raise SystemExit(f"rs3gw: metadata backend {settings.metadata!r} is not available in this build")
    return SqliteStore(settings.data_dir / "meta.db", fsync=settings.fsync)


def build_app(settings: Settings) -> S3App:
    app = S3App(build_engine(settings), accounts(settings), settings.region, settings.domain)
    if isinstance(app.engine.blobs, DedupBlobStore):
        record_dedup_settings(settings)  # for ``rs3gw heal run`` (with_served_dedup)
    else:  # no chunk index (any more): offline repairs write plain blobs, as this server does
        (settings.data_dir / DEDUP_RECORD).unlink(missing_ok=True)
    with_audit(app, settings)
    with_users(app, settings)
    with_metrics(app, settings)
    with_scrubber(app, settings)
    with_json_logs(app, settings)
    with_lifecycle(app, settings)
    with_tiers_worker(app, settings)
    with_transforms(app, settings)
    with_analytics(app, settings)
    with_tracing(app, settings)
    app.admin_routes += registry_routes()  # dataset and model registries (engine/registry.py)
    app.admin_routes += bucket_routes()  # rs3gw admin bucket|usage --endpoint (engine/bucket_admin.py)
    app.console_page = ConsoleSite(settings.region).page  # the web console's static files at /console/
    return app


def with_predictive_cache(blobs: BlobStore, settings: Settings) -> PredictiveCacheStore | None:
    """``[cache] enabled``: the predictive cache over the whole stack (whole plaintext blobs in memory),
    used by the engine's reads only, so writes, deletes and the stack's own type checks see the stack."""
    if not settings.cache.enabled:
        return None
    return PredictiveCacheStore(blobs, settings.cache, settings.data_dir / ".rs3gw" / "predictive_cache.json")


def with_analytics(app: S3App, settings: Settings) -> None:
    """Request series and cost estimates (``[analytics]``), the predictive cache's hooks and warming."""
    cache = app.engine.read_cache if isinstance(app.engine.read_cache, PredictiveCacheStore) else None
    if cache is not None:
        cache.on_event = metrics.cache_event
        app.on_startup.append(cache.start)
        app.on_shutdown.append(cache.close)
    if not settings.analytics.enabled:
        return
    recorder = RequestAnalytics(settings.data_dir, settings.analytics)
    app.observers.append(recorder.observe)
    app.on_startup.append(recorder.start)
    app.on_shutdown.append(recorder.stop)
    owners = [a.owner.id for a in accounts(settings)]
    api = AnalyticsApi(recorder, settings.tiers, owners, cache.stats if cache is not None else None)
    app.admin_routes += api.routes()


def with_tracing(app: S3App, settings: Settings) -> None:
    """``[tracing]`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``: a span per request, when the SDK is installed."""
    tracer = build_tracer(settings.tracing)
    if tracer is not None:
        app.observers.append(tracer.observe)
        app.on_shutdown.append(tracer.close)


def with_transforms(app: S3App, settings: Settings) -> None:
    """GET ?x-rs3gw-transform: limits, result cache and the [transforms.<name>] access points."""
    service = TransformService(settings.transforms)
    try:
        service.check_points()
    except ValueError as exc:
        raise SystemExit(f"rs3gw: config error: {exc}") from None
    app.transforms = service


def with_tiers_worker(app: S3App, settings: Settings) -> None:
    """Completes and expires restores, flushes access counts, moves INTELLIGENT_TIERING objects."""
    owners = [a.owner.id for a in accounts(settings)]

    async def start() -> None:
        await app.engine.tiers.start(owners, settings.lifecycle_interval)

    app.on_startup.append(start)
    app.on_shutdown.append(app.engine.tiers.stop)
    app.admin_routes += storage_report_routes(settings.tiers, owners)


def with_lifecycle(app: S3App, settings: Settings) -> None:
    """The background worker applying bucket lifecycle rules; one process of several runs it."""
    worker = LifecycleWorker(
        app.engine,
        [a.owner.id for a in accounts(settings)],
        settings.lifecycle_day_seconds,
        settings.lifecycle_interval,
        settings.data_dir / ".rs3gw" / "lifecycle.lock",
    )
    app.on_startup.append(worker.start)
    app.on_shutdown.append(worker.stop)
    if app.key_ring is not None:  # store-managed users' buckets get their rules applied too
        configured = list(worker.owner_ids)

        def with_store_users(ids: list[str]) -> None:
            worker.owner_ids = configured + [i for i in ids if i not in configured]

        app.key_ring.on_refresh.append(with_store_users)


def build_iam(store: MetadataStore, settings: Settings) -> Iam:
    """Store-managed users; secrets sealed under the local key provider's ``rs3gw/iam`` key.
    Changes bump the data dir's IAM generation, which every serving process of it watches (the
    admin API in any worker and the ``rs3gw admin user|key`` commands all build their Iam here)."""
    configured = accounts(settings)
    return Iam(
        store,
        LocalKeyProvider(settings.data_dir),
        [a.owner.display_name for a in configured],
        [a.access_key for a in configured],
        open_generation(settings.data_dir),
    )


def with_users(app: S3App, settings: Settings) -> None:
    """Store-managed users and keys beside the configured accounts, and their admin routes."""
    ring = KeyRing(build_iam(app.engine.store, settings), app.owners, settings.iam_refresh_interval)
    app.key_ring = ring
    app.admin_routes += user_routes(ring)
    app.on_startup.append(ring.start)
    app.on_shutdown.append(ring.stop)


def with_audit(app: S3App, settings: Settings) -> None:
    """Every request into the hash-chained log, its throttle in front of signature checks, its admin routes."""
    if not settings.audit.enabled:
        return
    from rs3gw.audit import AuditService
    from rs3gw.protocol.admin_audit import audit_routes

    service = AuditService(settings.audit, settings.data_dir, settings.fsync)
    app.observers.append(service.observe)
    app.throttled = service.throttled
    app.admin_routes += audit_routes(service)
    app.on_startup.append(service.start_async)
    app.on_shutdown.append(service.close_async)


def app_factory() -> S3App:
    """For ``uvicorn --factory`` with several workers: settings travel in the environment. Runs
    first in each worker, so the worker is bound to its parent's life before it builds anything."""
    die_with_parent()
    try:
        return build_app(settings_from_json(os.environ[SETTINGS_JSON_ENV]))
    except ConfigError as exc:
        # uvicorn respawns a worker that exits with any other status, forever: exit with the one
        # its supervisor reads as "cannot start", which stops the parent too (rs3gw serve then
        # exits non-zero). The message is the one line a single-process serve prints.
        print(f"rs3gw: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None
    except SystemExit as exc:  # a refusal with its message (e.g. a dedup.db beside PostgreSQL)
        if exc.code in (None, 0, STARTUP_FAILURE):
            raise
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None
    except Exception:
        logging.getLogger("rs3gw").exception("worker could not build the application")
        raise SystemExit(STARTUP_FAILURE) from None

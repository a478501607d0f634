"""The composition root: settings → stores → engine → ASGI app. Nothing else builds objects."""

from __future__ import annotations

import os

from rs3gw.blobs.local import LocalBlobStore
from rs3gw.config import SETTINGS_JSON_ENV, Settings, settings_from_json
from rs3gw.engine import Engine
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.model import Account, Owner
from rs3gw.protocol.app import S3App


def accounts(settings: Settings) -> list[Account]:
    return [Account(Owner.for_account(u.name), u.access_key, u.secret_key) for u in settings.users]


def build_engine(settings: Settings) -> Engine:
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    if settings.metadata != "sqlite" and not settings.metadata.startswith("sqlite:"):
        raise SystemExit(f"rs3gw: metadata backend {settings.metadata!r} is not available in this build")
    blobs = LocalBlobStore(data, fsync=settings.fsync)
    blobs.clean_tmp()
    store = SqliteStore(data / "meta.db", fsync=settings.fsync)
    return Engine(store, blobs, settings.region, settings.max_object_size)


def build_app(settings: Settings) -> S3App:
    return S3App(build_engine(settings), accounts(settings), settings.region, settings.domain)


def app_factory() -> S3App:
    """For ``uvicorn --factory`` with several workers: settings travel in the environment."""
    return build_app(settings_from_json(os.environ[SETTINGS_JSON_ENV]))

"""Bucket facts for administrators (``rs3gw admin bucket info|list``, ``rs3gw admin usage`` and the
admin API's ``buckets``/``usage`` routes): one implementation, so online and offline answers agree.

Owner names come from the caller (configured accounts plus store-managed users); an owner id no
name is known for is reported as the id itself rather than hidden.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rs3gw import errors
from rs3gw.engine import object_lock, sse
from rs3gw.meta.store import MetadataStore, all_buckets
from rs3gw.model import Bucket

COMPRESSION = "compression"  # bucket config names, as the protocol layer and admin API store them
LIFECYCLE = "lifecycle"
POLICY = "policy"
VERSIONING_STATES = ("Enabled", "Suspended")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _owner(b: Bucket, names: Mapping[str, str]) -> str:
    return names.get(b.owner_id, b.owner_id)


async def bucket_info(store: MetadataStore, b: Bucket, names: Mapping[str, str]) -> dict[str, Any]:
    """Everything an operator checks first about one bucket; ``compression`` None means the server default."""
    objects, size = await store.bucket_usage(b.name)
    enc = await store.get_bucket_config(b.name, sse.CONFIG_NAME)
    return {
        "name": b.name,
        "owner": _owner(b, names),
        "owner_id": b.owner_id,
        "created": _iso(b.created),
        "region": b.region,
        "versioning": b.versioning or "Disabled",
        "objects": objects,
        "bytes": size,
        "compression": await store.get_bucket_config(b.name, COMPRESSION),
        "encryption": sse.BucketEncryption.load(enc).alg if enc else None,
        "object_lock": await store.get_bucket_config(b.name, object_lock.CONFIG) is not None,
        "lifecycle": await store.get_bucket_config(b.name, LIFECYCLE) is not None,
        "policy": await store.get_bucket_config(b.name, POLICY) is not None,
    }


async def get_bucket(store: MetadataStore, name: str) -> Bucket:
    b = await store.get_bucket(name)
    if b is None:
        raise errors.NoSuchBucket(BucketName=name)
    return b


async def list_info(store: MetadataStore, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every bucket of every owner (store-managed users included), by name."""
    return [await bucket_info(store, b, names) for b in await all_buckets(store, list(names))]


async def usage(store: MetadataStore, names: Mapping[str, str], bucket: str | None = None) -> dict[str, Any]:
    """Object versions (delete markers excluded) and bytes per bucket, per owning account and in total."""
    chosen = [await get_bucket(store, bucket)] if bucket else await all_buckets(store, list(names))
    rows: list[dict[str, Any]] = []
    accounts: dict[str, dict[str, Any]] = {}
    for b in chosen:
        objects, size = await store.bucket_usage(b.name)
        owner = _owner(b, names)
        rows.append({"bucket": b.name, "owner": owner, "objects": objects, "bytes": size})
        acc = accounts.setdefault(owner, {"account": owner, "buckets": 0, "objects": 0, "bytes": 0})
        acc["buckets"] += 1
        acc["objects"] += objects
        acc["bytes"] += size
    total = {
        "buckets": len(rows),
        "objects": sum(r["objects"] for r in rows),
        "bytes": sum(r["bytes"] for r in rows),
    }
    return {"buckets": rows, "accounts": [accounts[k] for k in sorted(accounts)], "total": total}


def check_versioning(status: str) -> str:
    """``enabled``/``suspended`` in any case, as the S3 API spells them."""
    for state in VERSIONING_STATES:
        if status.strip().lower() == state.lower():
            return state
    raise errors.InvalidArgument(
        "versioning must be Enabled or Suspended", ArgumentName="versioning", ArgumentValue=status[:64]
    )

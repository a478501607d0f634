"""Walking every stored version of a bucket, for the passes that must see all of them (the tiering
scan, the storage report): one listing page at a time, so memory stays bounded on any bucket size."""

from __future__ import annotations

from collections.abc import AsyncIterator

from rs3gw.meta.store import MetadataStore, VersionQuery
from rs3gw.model import ObjectVersion

PAGE = 1000


async def stored_versions(store: MetadataStore, bucket: str) -> AsyncIterator[ObjectVersion]:
    """Every version stored in BUCKET in listing order, delete markers left out (they hold no data)."""
    q = VersionQuery(max_keys=PAGE)
    while True:
        page = await store.list_versions(bucket, q)
        for v in page.versions:
            if not v.delete_marker:
                yield v
        if not page.is_truncated:
            return
        q = VersionQuery(
            key_marker=page.next_key_marker or "",
            version_id_marker=page.next_version_id_marker or "",
            max_keys=PAGE,
        )

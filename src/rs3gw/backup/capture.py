"""Taking a snapshot: list every version (and delete marker), store new bodies, write the manifest.

Full snapshots re-read every body (a fresh, independent copy of the metadata and a re-hash; the
content-addressed store still keeps each body once). Incremental/differential snapshots reuse the
record of any version already captured by their chain (a version's body and metadata are immutable;
only its tags can change, and those are refreshed by the next full), so they fetch only new versions.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from rs3gw.backup.manifest import Catalog, Manifest, VersionRecord, iso, save
from rs3gw.backup.repo import CHUNK, Repo, body_key

HEADER_FIELDS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")
CHECKSUM_FIELDS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256")
Progress = Callable[[str, int, int | None], None]  # (phase, advance, total-if-known)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _optional(call: Callable[[], dict[str, Any]], *drop: str) -> dict[str, Any] | None:
    """A configuration getter whose 'not configured' error means None."""
    try:
        out = call()
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status in (404, 501) or error_code(exc).startswith("NoSuch") or "NotFound" in error_code(exc):
            return None
        if error_code(exc) in ("NotImplemented", "ObjectLockConfigurationNotFoundError"):
            return None
        raise
    out.pop("ResponseMetadata", None)
    for name in drop:
        out.pop(name, None)
    return out


def capture_config(client: Any, bucket: str) -> dict[str, Any]:
    """What the API returns of the bucket's configuration (absent sections are omitted)."""
    getters: dict[str, Callable[[], dict[str, Any]]] = {
        "versioning": lambda: client.get_bucket_versioning(Bucket=bucket),
        "tagging": lambda: client.get_bucket_tagging(Bucket=bucket),
        "cors": lambda: client.get_bucket_cors(Bucket=bucket),
        "lifecycle": lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
        "object_lock": lambda: client.get_object_lock_configuration(Bucket=bucket),
        "policy": lambda: client.get_bucket_policy(Bucket=bucket),
    }
    config: dict[str, Any] = {}
    for name, getter in getters.items():
        value = _optional(getter)
        if value:
            config[name] = value
    return config


def list_versions(client: Any, bucket: str) -> Iterator[VersionRecord]:
    """Every version and delete marker, newest first per key; servers without ListObjectVersions
    fall back to ListObjectsV2, recorded with an empty version id (GETs then name no version)."""
    try:
        pages = list(client.get_paginator("list_object_versions").paginate(Bucket=bucket))
    except ClientError as exc:
        if error_code(exc) != "NotImplemented":
            raise
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                yield VersionRecord(
                    key=item["Key"], version_id="", last_modified=iso(item["LastModified"]),
                    is_latest=True, etag=item.get("ETag", ""), size=int(item.get("Size", 0)),
                    storage_class=item.get("StorageClass", ""),
                )  # fmt: skip
        return
    order: dict[str, int] = {}
    rows: list[tuple[dict[str, Any], bool]] = []
    for page in pages:
        rows += [(v, False) for v in page.get("Versions", [])]
        rows += [(d, True) for d in page.get("DeleteMarkers", [])]
    # A page lists versions and markers separately; interleave them back into newest-first per key.
    rows.sort(key=lambda r: (r[0]["Key"], -r[0]["LastModified"].timestamp(), not r[0].get("IsLatest")))
    for item, marker in rows:
        n = order[item["Key"]] = order.get(item["Key"], -1) + 1
        yield VersionRecord(
            key=item["Key"], version_id=item.get("VersionId") or "null",
            last_modified=iso(item["LastModified"]), is_latest=bool(item.get("IsLatest")),
            is_delete_marker=marker, etag=item.get("ETag", ""), size=int(item.get("Size", 0)),
            storage_class=item.get("StorageClass", ""), order=n,
        )  # fmt: skip


def fetch_version(client: Any, repo: Repo, bucket: str, rec: VersionRecord, scratch: Path) -> int:
    """GET one version into the repository (if its body is new) and fill in its metadata; bytes read."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": rec.key, "ChecksumMode": "ENABLED"}
    if rec.version_id:  # "null" too: in a suspended bucket the null version need not be the latest
        args["VersionId"] = rec.version_id
    resp = client.get_object(**args)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=scratch)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            body = resp["Body"]
            while chunk := body.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        rec.sha256 = h.hexdigest()
        if not repo.exists(body_key(rec.sha256)):
            repo.put_file(body_key(rec.sha256), Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    rec.size = size
    rec.etag = resp.get("ETag", rec.etag)
    rec.content_type = resp.get("ContentType", "")
    rec.headers = {f: str(resp[f]) for f in HEADER_FIELDS if resp.get(f)}
    rec.metadata = dict(resp.get("Metadata", {}))
    rec.storage_class = resp.get("StorageClass", rec.storage_class) or rec.storage_class
    rec.checksums = {f[len("Checksum") :]: resp[f] for f in CHECKSUM_FIELDS if resp.get(f)}
    rec.checksum_type = resp.get("ChecksumType", "")
    tag_args = {k: v for k, v in args.items() if k != "ChecksumMode"}
    try:
        tags = client.get_object_tagging(**tag_args).get("TagSet", [])
        rec.tags = {t["Key"]: t["Value"] for t in tags}
    except ClientError as exc:
        if error_code(exc) != "NotImplemented":
            raise
    return size


def _base(catalog: Catalog, kind: str) -> Manifest | None:
    if kind == "full":
        return None
    if kind == "differential":
        return catalog.latest(("full",))
    return catalog.latest()


def snapshot_id(taken: datetime.datetime, kind: str) -> str:
    return f"{taken.astimezone(datetime.UTC):%Y%m%dT%H%M%S%fZ}-{kind}"


def create_snapshot(
    client: Any,
    repo: Repo,
    bucket: str,
    endpoint: str,
    kind: str = "full",
    progress: Progress | None = None,
    workers: int = 8,
) -> Manifest:
    """Snapshot `bucket` into `repo`; an incremental/differential with no base becomes a full."""
    catalog = Catalog(repo, bucket)
    base = _base(catalog, kind)
    if kind != "full" and base is None:
        kind = "full"
    known = catalog.materialize(base.id) if base else {}
    taken = datetime.datetime.now(datetime.UTC)
    config = capture_config(client, bucket)
    records = list(list_versions(client, bucket))
    new = [r for r in records if r.identity not in known]
    reused = len(records) - len(new)
    for rec in records:  # reused versions still carry the current is-latest flag and order
        if rec.identity in known and not rec.is_delete_marker:
            old = known[rec.identity]
            rec.sha256, rec.size, rec.content_type = old.sha256, old.size, old.content_type
            rec.headers, rec.metadata, rec.tags = old.headers, old.metadata, old.tags
            rec.checksums, rec.checksum_type = old.checksums, old.checksum_type
            rec.storage_class = old.storage_class or rec.storage_class
    to_fetch = [r for r in new if not r.is_delete_marker]
    if progress:
        progress("fetch", 0, sum(r.size for r in to_fetch))
    fetched = 0
    with tempfile.TemporaryDirectory(prefix="rs3gw-backup-") as scratch, ThreadPoolExecutor(workers) as pool:
        for n in pool.map(lambda r: fetch_version(client, repo, bucket, r, Path(scratch)), to_fetch):
            fetched += n
            if progress:
                progress("fetch", n, None)
    current = {r.identity for r in records}
    if base is None:
        delta, removed = records, []
    else:
        changed = [r for r in records if r.identity not in known or _flags_changed(known[r.identity], r)]
        delta = changed
        removed = [list(i) for i in known if i not in current]
    manifest = Manifest(
        id=snapshot_id(taken, kind),
        bucket=bucket,
        kind=kind,
        taken_at=iso(taken),
        parent=base.id if base else None,
        source_endpoint=endpoint,
        versioning=str(config.get("versioning", {}).get("Status", "")),
        config=config,
        versions=delta,
        removed=removed,
        stats={
            "versions": len(records),
            "new_versions": len(new),
            "reused_versions": reused,
            "delete_markers": sum(r.is_delete_marker for r in records),
            "bytes_fetched": fetched,
            "recorded": len(delta),
        },
    )
    save(repo, manifest)
    return manifest


def _flags_changed(old: VersionRecord, new: VersionRecord) -> bool:
    return old.is_latest != new.is_latest or old.order != new.order

"""Point-in-time state reconstruction and restore.

The state at time T is rebuilt from every version any snapshot of the bucket captured: per key, the
newest version whose last-modified is <= T and that had not vanished (been permanently deleted, or
overwritten in place in an unversioned bucket) by T; a delete marker there means "absent". Versions
are known only if some snapshot saw them, so in a versioned bucket every change between two
snapshots that survived until the later one is recovered exactly; in an unversioned bucket only
what the snapshots saw is known, so deletions show up at the next snapshot's instant.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from rs3gw.backup.capture import error_code, list_versions
from rs3gw.backup.manifest import Catalog, Manifest, VersionRecord, parse_time
from rs3gw.backup.repo import Repo, body_key

Ident = tuple[str, str, str, str]


@dataclass
class Span:
    record: VersionRecord
    first_seen: datetime.datetime
    gone_at: datetime.datetime | None = None  # taken-at of the first snapshot that no longer had it


def history(catalog: Catalog) -> dict[Ident, Span]:
    spans: dict[Ident, Span] = {}
    for m in catalog.all():
        state = catalog.materialize(m.id)
        for ident, rec in state.items():
            if ident not in spans:
                spans[ident] = Span(rec, m.taken)
            else:
                spans[ident].record = rec  # newest flags (is-latest, order)
        for ident, span in spans.items():
            if span.gone_at is None and ident not in state:
                span.gone_at = m.taken
    return spans


def state_at(catalog: Catalog, when: datetime.datetime) -> dict[str, VersionRecord]:
    """key -> the version current at `when` (keys whose current version is a delete marker omitted)."""
    best: dict[str, tuple[tuple[datetime.datetime, datetime.datetime, int], VersionRecord]] = {}
    for span in history(catalog).values():
        rec = span.record
        if rec.modified > when or (span.gone_at is not None and span.gone_at <= when):
            continue
        rank = (rec.modified, span.first_seen, -rec.order)
        if rec.key not in best or rank > best[rec.key][0]:
            best[rec.key] = (rank, rec)
    return {k: r for k, (_, r) in best.items() if not r.is_delete_marker}


def state_of(catalog: Catalog, snap: Manifest) -> dict[str, VersionRecord]:
    """The bucket's current objects exactly as one snapshot saw them."""
    return {r.key: r for r in catalog.materialize(snap.id).values() if r.is_latest and not r.is_delete_marker}


@dataclass
class RestoreReport:
    bucket: str
    as_of: str
    snapshot: str | None
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes: int = 0
    config_applied: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class RefusedError(Exception):
    """Restoring would destroy data that no snapshot holds."""


def put_args(rec: VersionRecord) -> dict[str, Any]:
    args: dict[str, Any] = {"Metadata": rec.metadata}
    if rec.content_type:
        args["ContentType"] = rec.content_type
    args.update(rec.headers)
    if rec.tags:
        args["Tagging"] = urllib.parse.urlencode(rec.tags)
    if rec.storage_class and rec.storage_class != "STANDARD":
        args["StorageClass"] = rec.storage_class
    # Hand the original full-object checksum back so the server re-verifies the restored bytes.
    if rec.checksum_type != "COMPOSITE":
        for algo, value in rec.checksums.items():
            if "-" not in value:
                args[f"Checksum{algo}"] = value
                break
    return args


def apply_config(
    client: Any, bucket: str, source_bucket: str, config: dict[str, Any], report: RestoreReport
) -> None:
    """Best effort: each section that the server rejects becomes a warning, never a failed restore."""
    steps: list[tuple[str, Callable[[], Any]]] = []
    if status := config.get("versioning", {}).get("Status"):
        steps.append(
            ("versioning", lambda: client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status}))
        )  # fmt: skip
    if tags := config.get("tagging", {}).get("TagSet"):
        steps.append(("tagging", lambda: client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})))
    if rules := config.get("cors", {}).get("CORSRules"):
        steps.append(
            ("cors", lambda: client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules}))
        )
    if lrules := config.get("lifecycle", {}).get("Rules"):
        steps.append(
            ("lifecycle", lambda: client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lrules}))
        )  # fmt: skip
    lock = config.get("object_lock", {}).get("ObjectLockConfiguration")
    if lock and lock.get("Rule"):
        steps.append(
            ("object_lock", lambda: client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock))
        )  # fmt: skip
    if policy := config.get("policy", {}).get("Policy"):
        text = policy.replace(f"arn:aws:s3:::{source_bucket}", f"arn:aws:s3:::{bucket}")
        steps.append(("policy", lambda: client.put_bucket_policy(Bucket=bucket, Policy=text)))
    for name, step in steps:
        try:
            step()
            report.config_applied.append(name)
        except ClientError as exc:
            report.warnings.append(f"bucket {name} not restored: {error_code(exc)}")


def _ensure_bucket(client: Any, bucket: str, config: dict[str, Any]) -> bool:
    """Create the bucket if needed (object lock can only be switched on at creation); True if created."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    lock = config.get("object_lock", {}).get("ObjectLockConfiguration", {})
    args: dict[str, Any] = {"Bucket": bucket}
    if lock.get("ObjectLockEnabled") == "Enabled":
        args["ObjectLockEnabledForBucket"] = True
    client.create_bucket(**args)
    return True


def current_objects(client: Any, bucket: str, prefix: str) -> dict[str, VersionRecord]:
    return {
        r.key: r
        for r in list_versions(client, bucket)
        if r.is_latest and not r.is_delete_marker and r.key.startswith(prefix)
    }


def restore(
    client: Any,
    repo: Repo,
    catalog: Catalog,
    source_bucket: str,
    dest_bucket: str,
    at: str | None = None,
    snapshot: str | None = None,
    prefix: str = "",
    force: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> RestoreReport:
    """Make `dest_bucket` (under `prefix`) hold exactly the chosen state: write what differs, delete extras."""
    snap = catalog.get(snapshot) if snapshot else catalog.latest()
    if snap is None:
        raise RefusedError(f"no snapshots of bucket {source_bucket!r} in {repo.description}")
    if at is not None:
        when = parse_time(at)
        wanted = state_at(catalog, when)
    else:
        when, wanted = snap.taken, state_of(catalog, snap)
    wanted = {k: r for k, r in wanted.items() if k.startswith(prefix)}
    report = RestoreReport(dest_bucket, when.isoformat(), None if at else snap.id)
    config = (catalog.latest() if at else snap).config  # type: ignore[union-attr]
    created = _ensure_bucket(client, dest_bucket, config)
    existing = {} if created else current_objects(client, dest_bucket, prefix)
    if existing and not force:
        known = {i for m in catalog.all() for i in catalog.materialize(m.id)}
        at_risk = sorted(
            k for k, cur in existing.items()
            if cur.identity not in known and (k not in wanted or wanted[k].identity != cur.identity)
        )  # fmt: skip
        if at_risk:
            raise RefusedError(
                f"{len(at_risk)} object(s) in {dest_bucket!r} (e.g. {at_risk[0]!r}) are not in any snapshot "
                "and would be overwritten or deleted; take a backup first or pass --force"
            )
    if created:
        apply_config(client, dest_bucket, source_bucket, config, report)
    todo = [r for k, r in sorted(wanted.items()) if not _same(existing.get(k), r)]
    report.unchanged = len(wanted) - len(todo)
    if progress:
        progress(0, sum(r.size for r in todo))
    for rec in todo:
        assert rec.sha256 is not None
        with repo.open(body_key(rec.sha256)) as body:
            client.put_object(Bucket=dest_bucket, Key=rec.key, Body=body, **put_args(rec))
        report.written += 1
        report.bytes += rec.size
        if progress:
            progress(rec.size, None)
    for key in sorted(set(existing) - set(wanted)):
        client.delete_object(Bucket=dest_bucket, Key=key)
        report.deleted += 1
    return report


def _same(current: VersionRecord | None, rec: VersionRecord) -> bool:
    """The destination already holds this very version (a restore into the bucket it came from)."""
    if current is None:
        return False
    if rec.version_id not in ("null", ""):
        return current.version_id == rec.version_id
    return current.etag == rec.etag and current.last_modified == rec.last_modified


def report_json(report: RestoreReport) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(report.__dict__))
    return out

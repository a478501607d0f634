"""A backup repository as a repair source for the scrubber: find the backed-up copy of one
object version and return its body only once it is proven to be that version's bytes.

A version matches on bucket, key, version id and ETag; a ``null`` version is rewritten in place,
so its id says nothing and it matches on ETag and size instead. The body is trusted only when
its SHA-256 equals the manifest's and its MD5 equals a single-part ETag (a multipart ETag is an
MD5 of part MD5s, which the caller re-checks against the stored segment layout).

``BackupSource`` is the scrubber's ``RepairSource`` (``rs3gw.engine.repair``): ``open_copy`` streams
the body and the repairer hashes it against the manifest's SHA-256 while rewriting, then re-checks
the rewritten data against every checksum the version recorded before it swaps anything in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rs3gw.backup.manifest import Catalog, ManifestError, VersionRecord
from rs3gw.backup.repo import Repo, body_key, open_repo
from rs3gw.engine.repair import GoodCopy
from rs3gw.model import ObjectVersion

_MD5_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Wanted:
    """The corrupt version, as the metadata store records it."""

    bucket: str
    key: str
    version_id: str
    etag: str
    size: int


def _matches(rec: VersionRecord, want: Wanted) -> bool:
    if rec.is_delete_marker or rec.sha256 is None or rec.key != want.key:
        return False
    if rec.etag.strip('"') != want.etag.strip('"') or rec.size != want.size:
        return False
    return want.version_id == "null" or rec.version_id == want.version_id


class BackupSource:
    """Looks versions up in every snapshot of a repository, newest snapshot first."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.description = f"backup {repo.description}"
        self._catalogs: dict[str, Catalog] = {}

    def _catalog(self, bucket: str) -> Catalog:
        if bucket not in self._catalogs:
            self._catalogs[bucket] = Catalog(self.repo, bucket)
        return self._catalogs[bucket]

    def find(self, want: Wanted) -> VersionRecord | None:
        """The newest backed-up record of this version, or None; unreadable manifests are skipped."""
        found = self._locate(want)
        return None if found is None else found[1]

    def _locate(self, want: Wanted) -> tuple[str, VersionRecord] | None:
        catalog = self._catalog(want.bucket)
        for snap_id in reversed(catalog.ids):
            try:
                manifest = catalog.get(snap_id)
            except ManifestError:
                continue
            for rec in manifest.versions:
                if _matches(rec, want):
                    return snap_id, rec
        return None

    def open_copy(self, obj: ObjectVersion) -> GoodCopy | None:
        """The repair source's side of a scrub repair: the stored body of exactly this version,
        opened for streaming (the repairer checks its SHA-256), or None when no snapshot has it."""
        found = self._locate(Wanted(obj.bucket, obj.key, obj.version_id, obj.etag, obj.size))
        if found is None or found[1].sha256 is None:
            return None
        snap_id, sha = found[0], found[1].sha256
        try:
            reader = self.repo.open(body_key(sha))
        except Exception:  # a missing or unreadable body: no repair from this backup
            return None
        return GoodCopy(reader, sha, f"{self.description} snapshot {snap_id}")

    def fetch(self, want: Wanted) -> tuple[VersionRecord, bytes] | None:
        """The verified body of this version, or None when no intact copy exists."""
        rec = self.find(want)
        if rec is None or rec.sha256 is None:
            return None
        try:
            body = self.repo.get_bytes(body_key(rec.sha256))
        except Exception:  # missing or unreadable body: no repair from this backup
            return None
        if len(body) != want.size or hashlib.sha256(body).hexdigest() != rec.sha256:
            return None
        etag = want.etag.strip('"')
        if _MD5_HEX.fullmatch(etag) and hashlib.md5(body, usedforsecurity=False).hexdigest() != etag:
            return None
        return rec, body


def open_source(
    location: str, endpoint: str | None = None, access_key: str | None = None, secret_key: str | None = None
) -> BackupSource:
    """A repair source on a backup location as ``rs3gw backup`` takes it: DIR or s3://BUCKET/PREFIX
    (with the endpoint and keys of the S3 service holding it)."""
    return BackupSource(open_repo(location, endpoint or None, access_key or None, secret_key or None))

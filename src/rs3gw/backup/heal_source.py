"""A backup repository as a repair source for the scrubber: find the backed-up copy of one
object version and return its body only once it is proven to be that version's bytes.

A version matches on bucket, key, version id and ETag; a ``null`` version is rewritten in place,
so its id says nothing and it matches on ETag and size instead. The body is trusted only when
its SHA-256 equals the manifest's and its MD5 equals a single-part ETag (a multipart ETag is an
MD5 of part MD5s, which the caller re-checks against the stored segment layout).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rs3gw.backup.manifest import Catalog, ManifestError, VersionRecord
from rs3gw.backup.repo import Repo, body_key

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
        self._catalogs: dict[str, Catalog] = {}

    def _catalog(self, bucket: str) -> Catalog:
        if bucket not in self._catalogs:
            self._catalogs[bucket] = Catalog(self.repo, bucket)
        return self._catalogs[bucket]

    def find(self, want: Wanted) -> VersionRecord | None:
        """The newest backed-up record of this version, or None; unreadable manifests are skipped."""
        catalog = self._catalog(want.bucket)
        for snap_id in reversed(catalog.ids):
            try:
                manifest = catalog.get(snap_id)
            except ManifestError:
                continue
            for rec in manifest.versions:
                if _matches(rec, want):
                    return rec
        return None

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

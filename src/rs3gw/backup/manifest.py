"""Snapshot manifests: the version records of one bucket, its configuration, and a self-checksum.

A full snapshot lists every version; incremental and differential ones list only the versions that
are new since their parent (plus the identities that disappeared), so `materialize` walks the chain.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rs3gw.backup.repo import Repo, manifest_key

FORMAT = "rs3gw-backup/1"
KINDS = ("full", "incremental", "differential")


class ManifestError(Exception):
    """A manifest that is missing, unparsable, or whose checksum does not match its content."""


@dataclass
class VersionRecord:
    key: str
    version_id: str
    last_modified: str  # ISO 8601 UTC, as the server reported it
    is_latest: bool
    is_delete_marker: bool = False
    etag: str = ""
    size: int = 0
    sha256: str | None = None  # of the body in the repository; None for delete markers
    storage_class: str = ""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, Content-Encoding, ...
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"SHA256": "base64"}
    checksum_type: str = ""
    order: int = 0  # position in the server's newest-first listing of this key; breaks timestamp ties

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Stable across snapshots: a null version is rewritten in place, so its time and etag count too."""
        return (self.key, self.version_id, self.last_modified, self.etag)

    @property
    def modified(self) -> datetime.datetime:
        return parse_time(self.last_modified)


@dataclass
class Manifest:
    id: str
    bucket: str
    kind: str
    taken_at: str
    parent: str | None
    source_endpoint: str
    versioning: str
    config: dict[str, Any]
    versions: list[VersionRecord]
    removed: list[list[str]] = field(default_factory=list)  # identities gone since the parent
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def taken(self) -> datetime.datetime:
        return parse_time(self.taken_at)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["format"] = FORMAT
        return body

    @staticmethod
    def from_json(body: dict[str, Any]) -> Manifest:
        if body.get("format") != FORMAT:
            raise ManifestError(f"unknown manifest format {body.get('format')!r}")
        fields = {k: v for k, v in body.items() if k != "format"}
        fields["versions"] = [VersionRecord(**v) for v in fields["versions"]]
        return Manifest(**fields)


def parse_time(text: str) -> datetime.datetime:
    """ISO 8601 or epoch seconds; naive times are UTC."""
    try:
        return datetime.datetime.fromtimestamp(float(text), datetime.UTC)
    except ValueError:
        pass
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode(manifest: Manifest) -> bytes:
    body = manifest.to_json()
    wrapper = {"sha256": hashlib.sha256(_canonical(body)).hexdigest(), "manifest": body}
    return json.dumps(wrapper, indent=1, sort_keys=True, ensure_ascii=False).encode()


def decode(raw: bytes, where: str) -> Manifest:
    try:
        wrapper = json.loads(raw)
        body, claimed = wrapper["manifest"], wrapper["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{where}: not a manifest ({exc})") from exc
    actual = hashlib.sha256(_canonical(body)).hexdigest()
    if actual != claimed:
        raise ManifestError(f"{where}: manifest checksum mismatch (stored {claimed}, actual {actual})")
    try:
        return Manifest.from_json(body)
    except (TypeError, KeyError) as exc:
        raise ManifestError(f"{where}: malformed manifest ({exc})") from exc


def save(repo: Repo, manifest: Manifest) -> None:
    repo.put_bytes(manifest_key(manifest.bucket, manifest.id), encode(manifest))


def load(repo: Repo, bucket: str, snap_id: str) -> Manifest:
    key = manifest_key(bucket, snap_id)
    try:
        raw = repo.get_bytes(key)
    except Exception as exc:
        raise ManifestError(f"{key}: cannot read ({exc})") from exc
    return decode(raw, key)


def snapshot_ids(repo: Repo, bucket: str) -> list[str]:
    """Oldest first (ids start with the UTC time the snapshot was taken)."""
    prefix = f"snapshots/{bucket}/"
    return sorted(k[len(prefix) : -5] for k, _ in repo.list_keys(prefix) if k.endswith(".json"))


def buckets(repo: Repo) -> list[str]:
    return sorted({k.split("/")[1] for k, _ in repo.list_keys("snapshots/") if k.count("/") == 2})


class Catalog:
    """All manifests of one bucket, loaded once, with chain materialization memoised."""

    def __init__(self, repo: Repo, bucket: str) -> None:
        self.repo, self.bucket = repo, bucket
        self.ids = snapshot_ids(repo, bucket)
        self._loaded: dict[str, Manifest] = {}
        self._states: dict[str, dict[tuple[str, str, str, str], VersionRecord]] = {}

    def get(self, snap_id: str) -> Manifest:
        if snap_id not in self._loaded:
            self._loaded[snap_id] = load(self.repo, self.bucket, snap_id)
        return self._loaded[snap_id]

    def all(self) -> list[Manifest]:
        return [self.get(i) for i in self.ids]

    def latest(self, kinds: tuple[str, ...] = KINDS) -> Manifest | None:
        for snap_id in reversed(self.ids):
            m = self.get(snap_id)
            if m.kind in kinds:
                return m
        return None

    def chain(self, snap_id: str) -> list[str]:
        """The snapshot and its ancestors, newest first."""
        out: list[str] = []
        current: str | None = snap_id
        while current is not None:
            if current in out:
                raise ManifestError(f"snapshot chain loops at {current}")
            if current not in self.ids:
                raise ManifestError(f"snapshot {out[-1] if out else snap_id} needs missing parent {current}")
            out.append(current)
            current = self.get(current).parent
        return out

    def materialize(self, snap_id: str) -> dict[tuple[str, str, str, str], VersionRecord]:
        """Every version the bucket held when this snapshot was taken."""
        if snap_id in self._states:
            return self._states[snap_id]
        m = self.get(snap_id)
        if m.parent is None:
            state = {}
        else:
            self.chain(snap_id)  # raises on a missing ancestor
            state = dict(self.materialize(m.parent))
        for ident in m.removed:
            state.pop((ident[0], ident[1], ident[2], ident[3]), None)
        for rec in m.versions:
            state[rec.identity] = rec
        self._states[snap_id] = state
        return state

"""Typed, frozen records that cross layers: buckets, object versions, uploads, parts, listings.

Every record says how its bytes were stored (``segments``) so it can always be read back, whatever
features later change in the data path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

NULL_VERSION = "null"
STORAGE_CLASSES = (
    "STANDARD",
    "INTELLIGENT_TIERING",
    "STANDARD_IA",
    "ONEZONE_IA",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
)


@dataclass(frozen=True)
class Owner:
    """An account as S3 reports it; the canonical id is derived from the name so it survives restarts."""

    id: str
    display_name: str

    @classmethod
    def for_account(cls, name: str) -> Owner:
        return cls(hashlib.sha256(f"rs3gw-account:{name}".encode()).hexdigest(), name)


@dataclass(frozen=True)
class Account:
    """One identity: an owner with the access keys that authenticate as it."""

    owner: Owner
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class Bucket:
    name: str
    owner_id: str
    created: float
    region: str
    versioning: str = ""  # "" (never enabled) | "Enabled" | "Suspended"


@dataclass(frozen=True)
class Segment:
    """A run of object bytes kept in one blob; multipart objects have one per part."""

    blob_id: str
    size: int


@dataclass(frozen=True)
class ObjectMeta:
    """What S3 returns about an object besides its bytes."""

    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)  # content-encoding, cache-control, ...
    user_meta: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64 value
    checksum_type: str = ""  # "FULL_OBJECT" | "COMPOSITE" | ""
    storage_class: str = "STANDARD"
    tags: dict[str, str] = field(default_factory=dict)  # object tagging (key -> value)
    # Feature-owned system metadata (object lock, encryption, restore, ...), keys namespaced by
    # feature ("lock-mode", "sse", "restore-expiry", ...). One open field instead of one column
    # per feature keeps the stores (SQLite, PostgreSQL) unchanged as features land.
    system: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str
    size: int
    etag: str  # without quotes
    last_modified: float
    meta: ObjectMeta
    segments: tuple[Segment, ...]
    owner_id: str
    parts_count: int = 0  # 0 for single-part objects
    is_latest: bool = True
    delete_marker: bool = False


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    owner_id: str
    meta: ObjectMeta


@dataclass(frozen=True)
class Part:
    part_number: int
    size: int
    etag: str
    last_modified: float
    blob_id: str
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectListing:
    """Listing entries carry no ``segments`` (empty): read an object to get its data locations."""

    objects: list[ObjectVersion]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None  # last key or prefix returned, when truncated


@dataclass(frozen=True)
class VersionListing:
    """Like ObjectListing, entries carry no ``segments``."""

    versions: list[ObjectVersion]  # delete markers included (delete_marker=True)
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


@dataclass(frozen=True)
class UploadListing:
    uploads: list[Upload]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


@dataclass(frozen=True)
class PartListing:
    parts: list[Part]
    is_truncated: bool
    next_part_number_marker: int


_T = TypeVar("_T")
_FIELDS: dict[type, frozenset[str]] = {}


def frozen_from(cls: type[_T], values: dict[str, Any]) -> _T:
    """A frozen dataclass from all its fields without its ``__init__``, whose one
    ``object.__setattr__`` per field is a measurable part of a small request's cost (the auth
    records and the request event are built on every request). The value is the same frozen,
    hashable, comparable instance; any other set of fields goes through the constructor, which then
    raises as usual."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    if values.keys() != names:
        return cls(**values)
    obj: _T = object.__new__(cls)
    obj.__dict__.update(values)
    return obj

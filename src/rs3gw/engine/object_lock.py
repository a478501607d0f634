"""Object Lock (WORM): a bucket's lock configuration, each version's retention and legal hold, and
the one check every permanent removal of a version passes (``ObjectLock.check_removal``).

Per-version state lives in ``ObjectMeta.system`` ("lock-mode", "lock-until", "legal-hold"); the
bucket's configuration is the "object-lock" bucket config document. Rules follow the AWS "Locking
objects with Object Lock" guide: COMPLIANCE is never shortened or removed before it expires,
GOVERNANCE only with x-amz-bypass-governance-retention, a legal hold blocks until turned OFF, and
delete markers carry no protection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rs3gw import errors
from rs3gw.model import NULL_VERSION, ObjectMeta, ObjectVersion
from rs3gw.timefmt import iso8601

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

CONFIG = "object-lock"
MODES = ("GOVERNANCE", "COMPLIANCE")
MODE_KEY, UNTIL_KEY, HOLD_KEY = "lock-mode", "lock-until", "legal-hold"
LOCK_KEYS = (MODE_KEY, UNTIL_KEY, HOLD_KEY)
MAX_DAYS, MAX_YEARS = 36500, 100  # AWS's ceiling on a default retention period

MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"

LOCKED_MESSAGE = "Access Denied because object protected by object lock."
# AWS words the missing configuration differently for object writes and for the lock operations.
MISSING_ON_WRITE = "Bucket is missing ObjectLockConfiguration"
MISSING_ON_LOCK_OP = "Bucket is missing Object Lock Configuration"


@dataclass(frozen=True)
class DefaultRetention:
    mode: str
    days: int | None = None
    years: int | None = None

    def until(self, now: float) -> float:
        """The retain-until time of a version created at ``now``; years are calendar years."""
        if self.days is not None:
            return now + self.days * 86400
        start = datetime.fromtimestamp(now, UTC)
        years = self.years or 0
        try:
            return start.replace(year=start.year + years).timestamp()
        except ValueError:  # 29 February in a year that has none
            return start.replace(year=start.year + years, day=28).timestamp()


@dataclass(frozen=True)
class LockConfig:
    """A bucket's configuration; a bucket with lock enabled always has one (enabled cannot be undone)."""

    default: DefaultRetention | None = None

    def dumps(self) -> str:
        d = self.default
        rule = None if d is None else {"mode": d.mode, "days": d.days, "years": d.years}
        return json.dumps({"enabled": True, "default": rule}, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> LockConfig:
        rule = json.loads(text).get("default")
        if not rule:
            return cls()
        return cls(DefaultRetention(rule["mode"], rule.get("days"), rule.get("years")))


@dataclass(frozen=True)
class Retention:
    mode: str
    until: float  # POSIX seconds

    def active(self, now: float) -> bool:
        return self.until > now


# -- parsing and validation (pure) -----------------------------------------------------------------
def parse_date(text: str) -> float | None:
    """POSIX time of an ISO 8601 timestamp (a zone-less one is UTC); None when unparseable."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def default_retention(mode: str | None, days: str | None, years: str | None) -> DefaultRetention:
    """A DefaultRetention from its XML fields: a mode and exactly one of Days and Years."""
    if mode not in MODES or (days is None) == (years is None):
        raise errors.MalformedXML()
    value = days if days is not None else years
    assert value is not None
    limit = MAX_DAYS if days is not None else MAX_YEARS
    try:
        n = int(value.strip())
    except ValueError:
        raise errors.MalformedXML() from None
    if n <= 0 or n > limit:
        raise errors.InvalidArgument(
            "Default retention period must be a positive integer value.",
            ArgumentName="Days" if days is not None else "Years",
            ArgumentValue=value,
        )
    return DefaultRetention(mode, n, None) if days is not None else DefaultRetention(mode, None, n)


def new_retention(mode: str | None, until: str | None, now: float) -> Retention | None:
    """The Retention of a PutObjectRetention body; both fields absent means "remove"."""
    if mode is None and until is None:
        return None
    if mode not in MODES or until is None:
        raise errors.MalformedXML()
    ts = parse_date(until)
    if ts is None:
        raise errors.MalformedXML()
    if ts <= now:
        raise errors.InvalidRequest("The retain until date must be in the future!")
    return Retention(mode, ts)


def legal_hold_status(status: str | None) -> str:
    if status not in ("ON", "OFF"):
        raise errors.MalformedXML()
    return status


def from_headers(h: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """Lock system metadata declared by PutObject, CopyObject or CreateMultipartUpload headers."""
    mode, until, hold = h.get(MODE_HEADER), h.get(UNTIL_HEADER), h.get(HOLD_HEADER)
    out: dict[str, str] = {}
    if (mode is None) != (until is None):
        raise errors.InvalidRequest(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        )
    if mode is not None and until is not None:
        if mode not in MODES:
            raise errors.InvalidArgument(
                "Unknown wormMode directive.", ArgumentName=MODE_HEADER, ArgumentValue=mode
            )
        ts = parse_date(until)
        if ts is None:
            raise errors.InvalidArgument(
                "The retain until date must be provided in ISO 8601 format",
                ArgumentName=UNTIL_HEADER,
                ArgumentValue=until,
            )
        if ts <= (time.time() if now is None else now):
            raise errors.InvalidRequest("The retain until date must be in the future!")
        out[MODE_KEY], out[UNTIL_KEY] = mode, iso8601(ts)
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise errors.InvalidArgument(
                "Legal Hold must be either of 'ON' or 'OFF'", ArgumentName=HOLD_HEADER, ArgumentValue=hold
            )
        out[HOLD_KEY] = hold
    return out


# -- per-version state (pure) ----------------------------------------------------------------------
def retention_of(system: Mapping[str, str]) -> Retention | None:
    mode, until = system.get(MODE_KEY), system.get(UNTIL_KEY)
    if mode is None or until is None:
        return None
    ts = parse_date(until)
    # A stored date we cannot read protects forever rather than never: fail closed.
    return Retention(mode, float("inf") if ts is None else ts)


def legal_hold_of(system: Mapping[str, str]) -> str | None:
    """ "ON", "OFF", or None when no legal hold was ever set on the version."""
    return system.get(HOLD_KEY)


def without_lock(system: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in system.items() if k not in LOCK_KEYS}


def with_retention(system: Mapping[str, str], r: Retention | None) -> dict[str, str]:
    out = {k: v for k, v in system.items() if k not in (MODE_KEY, UNTIL_KEY)}
    if r is not None:
        out[MODE_KEY], out[UNTIL_KEY] = r.mode, iso8601(r.until)
    return out


def response_headers(system: Mapping[str, str]) -> dict[str, str]:
    """The x-amz-object-lock-* headers GET and HEAD return for a version."""
    h: dict[str, str] = {}
    if MODE_KEY in system and UNTIL_KEY in system:
        h[MODE_HEADER], h[UNTIL_HEADER] = system[MODE_KEY], system[UNTIL_KEY]
    if HOLD_KEY in system:
        h[HOLD_HEADER] = system[HOLD_KEY]
    return h


def check_removal(obj: ObjectVersion, bypass_governance: bool, now: float | None = None) -> None:
    """AccessDenied when ``obj``'s data may not be removed for good (delete by version id,
    multi-object delete, lifecycle expiration): a legal hold, unexpired COMPLIANCE retention, or
    unexpired GOVERNANCE retention without the bypass."""
    if obj.delete_marker:
        return
    system = obj.meta.system
    if legal_hold_of(system) == "ON":
        raise errors.AccessDenied(LOCKED_MESSAGE)
    r = retention_of(system)
    if r is None or not r.active(time.time() if now is None else now):
        return
    if r.mode == "COMPLIANCE" or not bypass_governance:
        raise errors.AccessDenied(LOCKED_MESSAGE)


def check_retention_change(
    current: Retention | None, new: Retention | None, bypass_governance: bool, now: float
) -> None:
    """Retention may always be extended in its own mode; shortening, removing or any change of mode
    needs an expired retention, or for GOVERNANCE the bypass (as on S3: GOVERNANCE → COMPLIANCE
    alters the lock settings, so it is an override); COMPLIANCE is never changed before expiry."""
    if current is None or not current.active(now):
        return
    weaker = new is None or new.until < current.until or new.mode != current.mode
    if not weaker:
        return
    if current.mode == "COMPLIANCE" or not bypass_governance:
        raise errors.AccessDenied(LOCKED_MESSAGE)


def apply_default(cfg: LockConfig | None, meta: ObjectMeta, now: float | None = None) -> ObjectMeta:
    """``meta`` with the bucket's default retention (``cfg``: its lock configuration) applied; lock
    metadata on a bucket without Object Lock is InvalidRequest. Pure, so a PutObject that already
    read the configuration (``ObjectEngine.put_config``) needs no second read."""
    explicit = any(k in meta.system for k in LOCK_KEYS)
    if cfg is None:
        if explicit:
            raise errors.InvalidRequest(MISSING_ON_WRITE)
        return meta
    if cfg.default is None or MODE_KEY in meta.system:
        return meta
    until = cfg.default.until(time.time() if now is None else now)
    return replace(meta, system=with_retention(meta.system, Retention(cfg.default.mode, until)))


def has_default(cfg: LockConfig | None) -> bool:
    """Whether new versions get a default retention (and so PutObject must carry a body digest)."""
    return cfg is not None and cfg.default is not None


# -- the engine component --------------------------------------------------------------------------
class ObjectLock:
    """Lock operations and checks over an engine; serializes lock changes against removals.

    A per-key asyncio lock makes "check then remove" and "check then change retention" atomic
    within this process, so a retention set concurrently can never be deleted past.
    """

    def __init__(self, engine: ObjectEngine) -> None:
        self.engine = engine
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._users: dict[tuple[str, str], int] = {}

    @asynccontextmanager
    async def guard(self, bucket: str, key: str) -> AsyncIterator[None]:
        k = (bucket, key)
        lock = self._locks.setdefault(k, asyncio.Lock())
        self._users[k] = self._users.get(k, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[k] -= 1
            if self._users[k] == 0:
                del self._users[k], self._locks[k]

    # bucket configuration
    async def config(self, bucket: str) -> LockConfig | None:
        doc = await self.engine.store.get_bucket_config(bucket, CONFIG)
        return None if doc is None else LockConfig.loads(doc)

    async def get_configuration(self, bucket: str) -> LockConfig:
        await self.engine.get_bucket(bucket)
        cfg = await self.config(bucket)
        if cfg is None:
            raise errors.error_class("ObjectLockConfigurationNotFoundError")()
        return cfg

    async def put_configuration(self, bucket: str, cfg: LockConfig) -> None:
        """Enabling lock on an existing bucket needs versioning Enabled (as AWS allows since 2023)."""
        b = await self.engine.get_bucket(bucket)
        if b.versioning != "Enabled" and await self.config(bucket) is None:
            raise errors.error_class("InvalidBucketState")(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
            )
        await self.engine.store.put_bucket_config(bucket, CONFIG, cfg.dumps())

    async def enable_on_new_bucket(self, bucket: str) -> None:
        await self.engine.store.put_bucket_config(bucket, CONFIG, LockConfig().dumps())

    async def check_versioning_change(self, bucket: str, status: str) -> None:
        if status != "Enabled" and await self.config(bucket) is not None:
            raise errors.error_class("InvalidBucketState")(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be "
                "changed."
            )

    # new versions
    async def for_new_version(self, bucket: str, meta: ObjectMeta, now: float | None = None) -> ObjectMeta:
        """``meta`` with the bucket's default retention applied; lock metadata on a bucket without
        Object Lock is InvalidRequest."""
        return apply_default(await self.config(bucket), meta, now)

    async def has_default(self, bucket: str) -> bool:
        return has_default(await self.config(bucket))

    # per-version operations
    async def _locked_version(self, bucket: str, key: str, version_id: str | None) -> ObjectVersion:
        if await self.config(bucket) is None:
            await self.engine.get_bucket(bucket)
            raise errors.InvalidRequest(MISSING_ON_LOCK_OP)
        return (await self.engine.head_object(bucket, key, version_id)).obj

    async def get_retention(self, bucket: str, key: str, version_id: str | None) -> Retention:
        obj = await self._locked_version(bucket, key, version_id)
        r = retention_of(obj.meta.system)
        if r is None:
            raise errors.error_class("NoSuchObjectLockConfiguration")()
        return r

    async def get_legal_hold(self, bucket: str, key: str, version_id: str | None) -> str:
        obj = await self._locked_version(bucket, key, version_id)
        hold = legal_hold_of(obj.meta.system)
        if hold is None:
            raise errors.error_class("NoSuchObjectLockConfiguration")()
        return hold

    async def put_retention(
        self, bucket: str, key: str, version_id: str | None, new: Retention | None, bypass_governance: bool
    ) -> ObjectVersion:
        async with self.guard(bucket, key):
            obj = await self._locked_version(bucket, key, version_id)
            check_retention_change(retention_of(obj.meta.system), new, bypass_governance, time.time())
            meta = replace(obj.meta, system=with_retention(obj.meta.system, new))
            return await self.engine.store.update_object_meta(bucket, key, obj.version_id, meta)

    async def put_legal_hold(
        self, bucket: str, key: str, version_id: str | None, status: str
    ) -> ObjectVersion:
        async with self.guard(bucket, key):
            obj = await self._locked_version(bucket, key, version_id)
            meta = replace(obj.meta, system={**obj.meta.system, HOLD_KEY: status})
            return await self.engine.store.update_object_meta(bucket, key, obj.version_id, meta)

    async def keep_state(self, bucket: str, key: str, version_id: str | None, meta: ObjectMeta) -> ObjectMeta:
        """``meta`` carrying the stored version's lock state instead of its own (callers hold the guard)."""
        cur = await self.engine.store.get_object(bucket, key, version_id)
        if cur is None or cur.delete_marker:
            return meta  # the store answers NoSuchKey / NoSuchVersion / MethodNotAllowed
        kept = {k: v for k, v in cur.meta.system.items() if k in LOCK_KEYS}
        if kept == {k: v for k, v in meta.system.items() if k in LOCK_KEYS}:
            return meta
        return replace(meta, system={**without_lock(meta.system), **kept})

    async def check_removal(self, bucket: str, key: str, version_id: str | None, bypass: bool) -> None:
        """Raise AccessDenied if the version a permanent delete names is protected; the caller holds
        ``guard(bucket, key)`` until its removal commits."""
        obj = await self.engine.store.get_object(bucket, key, version_id or NULL_VERSION)
        if obj is not None:
            check_removal(obj, bypass)

"""Bucket lifecycle rules: the parsed configuration, AWS's value checks, matching and due times. No I/O.

Shape and error codes follow the PutBucketLifecycleConfiguration page and "Lifecycle configuration
elements" of the S3 user guide: structural problems are MalformedXML (raised by the XML parser),
bad values InvalidArgument, incompatible combinations InvalidRequest.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

from rs3gw import errors

MAX_RULES = 1000
MAX_ID_LEN = 255
MAX_PREFIX_LEN = 1024
MAX_NEWER_VERSIONS = 100
MIN_SIZE_DEFAULT = "all_storage_classes_128K"
MIN_SIZE_MODES = ("varies_by_storage_class", MIN_SIZE_DEFAULT)
SMALL_OBJECT = 128 * 1024  # below this, the default minimum size blocks transitions
TRANSITION_CLASSES = (
    "GLACIER",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)
THIRTY_DAY_CLASSES = ("STANDARD_IA", "ONEZONE_IA")  # AWS's minimum age before these transitions
SMALL_OK_CLASSES = ("GLACIER", "DEEP_ARCHIVE")  # what varies_by_storage_class lets small objects reach
# The waterfall: a transition only ever moves an object down this list (colder), never back.
_RANK = {
    "STANDARD": 0,
    "REDUCED_REDUNDANCY": 0,
    "INTELLIGENT_TIERING": 1,
    "STANDARD_IA": 2,
    "ONEZONE_IA": 3,
    "GLACIER_IR": 4,
    "GLACIER": 5,
    "DEEP_ARCHIVE": 6,
}


@dataclass(frozen=True)
class LifecycleFilter:
    """Which objects a rule applies to; ``form`` remembers how the client wrote it, for GET."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_gt: int | None = None
    size_lt: int | None = None
    form: str = "empty"  # "legacy" (rule-level Prefix) | "empty" | "prefix" | "tag" | "gt" | "lt" | "and"

    def matches(self, key: str, size: int, tags: dict[str, str]) -> bool:
        if not key.startswith(self.prefix):
            return False
        if any(tags.get(k) != v for k, v in self.tags):
            return False
        if self.size_gt is not None and size <= self.size_gt:
            return False
        return self.size_lt is None or size < self.size_lt


@dataclass(frozen=True)
class Expiration:
    days: int | None = None
    date: float | None = None  # epoch seconds, midnight UTC
    expired_object_delete_marker: bool | None = None


@dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: float | None = None


@dataclass(frozen=True)
class NoncurrentExpiration:
    noncurrent_days: int
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True)
class NoncurrentTransition:
    storage_class: str
    noncurrent_days: int
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True)
class LifecycleRule:
    status: str  # "Enabled" | "Disabled"
    filter: LifecycleFilter
    id: str = ""
    expiration: Expiration | None = None
    transitions: tuple[Transition, ...] = ()
    noncurrent_expiration: NoncurrentExpiration | None = None
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()
    abort_days: int | None = None  # AbortIncompleteMultipartUpload DaysAfterInitiation

    @property
    def enabled(self) -> bool:
        return self.status == "Enabled"


@dataclass(frozen=True)
class LifecycleConfig:
    rules: tuple[LifecycleRule, ...]
    min_size_mode: str = MIN_SIZE_DEFAULT  # x-amz-transition-default-minimum-object-size


# -- validation ---------------------------------------------------------------------------------
def _arg(message: str, name: str, value: object) -> errors.S3Error:
    return errors.InvalidArgument(message, ArgumentName=name, ArgumentValue=str(value))


def _where(rule: LifecycleRule) -> str:
    return rule.filter.prefix


def _check_date(date: float | None) -> None:
    if date is not None and date % 86400 != 0:
        raise _arg("'Date' must be at midnight GMT", "Date", date)


def _check_filter(rule: LifecycleRule) -> None:
    f = rule.filter
    if len(f.prefix.encode()) > MAX_PREFIX_LEN:
        raise errors.InvalidRequest("The maximum size of a prefix is 1024.")
    keys = [k for k, _ in f.tags]
    if len(set(keys)) != len(keys):
        raise errors.InvalidRequest("Duplicate Tag Keys are not allowed.")
    for k, v in f.tags:
        if not k or len(k) > 128:
            raise errors.InvalidRequest("The TagKey you have provided is invalid")
        if len(v) > 256:
            raise errors.InvalidRequest("The TagValue you have provided is invalid")
    for name, size in (("ObjectSizeGreaterThan", f.size_gt), ("ObjectSizeLessThan", f.size_lt)):
        if size is not None and size < 0:
            raise _arg(f"'{name}' must be a non-negative integer", name, size)
    if f.size_gt is not None and f.size_lt is not None and f.size_lt <= f.size_gt:
        raise _arg(
            "ObjectSizeLessThan must be greater than ObjectSizeGreaterThan", "ObjectSizeLessThan", f.size_lt
        )


def _check_expiration(rule: LifecycleRule) -> None:
    exp = rule.expiration
    if exp is None:
        return
    if exp.days is not None and exp.days <= 0:
        raise _arg("'Days' for Expiration action must be a positive integer", "Days", exp.days)
    _check_date(exp.date)
    if exp.expired_object_delete_marker and rule.filter.tags:
        raise errors.InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with tag-based filters.")


def _check_transitions(rule: LifecycleRule) -> None:
    seen: set[str] = set()
    for t in rule.transitions:
        if t.days is not None and t.days < 0:
            raise _arg("'Days' in Transition action must be nonnegative", "Days", t.days)
        if t.days is not None and t.storage_class in THIRTY_DAY_CLASSES and t.days < 30:
            raise _arg(
                f"'Days' in Transition action must be greater than or equal to 30 for storageClass "
                f"'{t.storage_class}'",
                "Days",
                t.days,
            )
        _check_date(t.date)
        if t.storage_class in seen:
            raise errors.InvalidRequest(
                f"'StorageClass' must be different for 'Transition' actions in same 'Rule' with prefix "
                f"'{_where(rule)}'"
            )
        seen.add(t.storage_class)
    kinds = {t.days is not None for t in rule.transitions}
    if len(kinds) > 1:
        raise errors.InvalidRequest(
            f"Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for prefix '{_where(rule)}'"
        )
    exp = rule.expiration
    if exp is None or not rule.transitions or exp.expired_object_delete_marker is not None:
        return
    if (exp.days is not None) not in kinds:
        raise errors.InvalidRequest(
            "Found mixed 'Date' and 'Days' based Expiration and Transition actions in lifecycle rule for "
            f"prefix '{_where(rule)}'"
        )
    last = max((t.days if t.days is not None else t.date or 0.0) for t in rule.transitions)
    first_exp = exp.days if exp.days is not None else exp.date or 0.0
    if first_exp <= last:
        raise _arg(
            f"'Days' in the Expiration action for filter '(prefix={_where(rule)})' must be greater than "
            "'Days' in the Transition action",
            "Days",
            first_exp,
        )


def _check_noncurrent(rule: LifecycleRule) -> None:
    nce = rule.noncurrent_expiration
    if nce is not None:
        if nce.noncurrent_days <= 0:
            raise _arg(
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
                "NoncurrentDays",
                nce.noncurrent_days,
            )
        _check_newer(nce.newer_noncurrent_versions, "NoncurrentVersionExpiration")
    seen: set[str] = set()
    for t in rule.noncurrent_transitions:
        if t.noncurrent_days < 0:
            raise _arg(
                "'NoncurrentDays' in NoncurrentVersionTransition action must be nonnegative",
                "NoncurrentDays",
                t.noncurrent_days,
            )
        if t.storage_class in THIRTY_DAY_CLASSES and t.noncurrent_days < 30:
            raise _arg(
                "'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to 30 "
                f"for storageClass '{t.storage_class}'",
                "NoncurrentDays",
                t.noncurrent_days,
            )
        _check_newer(t.newer_noncurrent_versions, "NoncurrentVersionTransition")
        if t.storage_class in seen:
            raise errors.InvalidRequest(
                "'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same 'Rule' "
                f"with prefix '{_where(rule)}'"
            )
        seen.add(t.storage_class)


def _check_newer(n: int | None, action: str) -> None:
    if n is not None and not 1 <= n <= MAX_NEWER_VERSIONS:
        raise _arg(
            f"'NewerNoncurrentVersions' for {action} action must be a positive integer up to "
            f"{MAX_NEWER_VERSIONS}",
            "NewerNoncurrentVersions",
            n,
        )


def _has_action(rule: LifecycleRule) -> bool:
    return bool(
        rule.expiration
        or rule.transitions
        or rule.noncurrent_expiration
        or rule.noncurrent_transitions
        or rule.abort_days is not None
    )


def validate(config: LifecycleConfig) -> LifecycleConfig:
    """Check values as S3 does and give rules without an ID a generated one (as S3 does)."""
    if config.min_size_mode not in MIN_SIZE_MODES:
        raise _arg(
            "Invalid value for x-amz-transition-default-minimum-object-size",
            "x-amz-transition-default-minimum-object-size",
            config.min_size_mode,
        )
    if not config.rules or len(config.rules) > MAX_RULES:
        raise errors.MalformedXML()
    seen: set[str] = set()
    rules: list[LifecycleRule] = []
    for rule in config.rules:
        if len(rule.id) > MAX_ID_LEN:
            raise _arg("ID length should not exceed allowed limit of 255", "ID", rule.id)
        if rule.id and rule.id in seen:
            raise _arg("Rule ID must be unique. Found same ID for more than one rule", "ID", rule.id)
        seen.add(rule.id)
        _check_filter(rule)
        if not _has_action(rule):
            raise errors.InvalidRequest("At least one action needs to be specified in a rule")
        _check_expiration(rule)
        _check_transitions(rule)
        _check_noncurrent(rule)
        if rule.abort_days is not None:
            if rule.abort_days <= 0:
                raise _arg(
                    "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
                    "DaysAfterInitiation",
                    rule.abort_days,
                )
            if rule.filter.tags:
                raise errors.InvalidRequest(
                    "AbortIncompleteMultipartUpload cannot be specified with tag-based filters."
                )
        rules.append(rule if rule.id else replace(rule, id=_new_id(seen)))
    return replace(config, rules=tuple(rules))


def _new_id(taken: set[str]) -> str:
    while (rid := secrets.token_urlsafe(36)) in taken:
        pass
    taken.add(rid)
    return rid


# -- evaluation ---------------------------------------------------------------------------------
def due_time(start: float, days: int, day_seconds: float) -> float:
    """When ``days`` lifecycle days after ``start`` have passed: like S3, rounded up to the start of
    the next day (midnight UTC when a day is 86400 s; with accelerated days, the next day boundary)."""
    return math.ceil((start + days * day_seconds) / day_seconds) * day_seconds


def colder(target: str, current: str) -> bool:
    """Transitions only move down the waterfall (STANDARD → IA → ... → DEEP_ARCHIVE)."""
    return _RANK.get(target, 0) > _RANK.get(current, 0)


def size_allows(config: LifecycleConfig, rule: LifecycleRule, size: int, storage_class: str) -> bool:
    """The default minimum object size for transitions, unless the rule names a size itself."""
    if size >= SMALL_OBJECT or rule.filter.size_gt is not None or rule.filter.size_lt is not None:
        return True
    return config.min_size_mode == "varies_by_storage_class" and storage_class in SMALL_OK_CLASSES


def due_transition(
    config: LifecycleConfig,
    rule: LifecycleRule,
    start: float,
    size: int,
    current: str,
    now: float,
    day: float,
) -> str | None:
    """The coldest storage class this rule has moved a current version to by ``now``, if colder."""
    best: str | None = None
    for t in rule.transitions:
        when = t.date if t.date is not None else due_time(start, t.days or 0, day)
        if (
            now >= when
            and colder(t.storage_class, best or current)
            and size_allows(config, rule, size, t.storage_class)
        ):
            best = t.storage_class
    return best


def expiry_rules(config: LifecycleConfig) -> tuple[LifecycleRule, ...]:
    """The rules that expire a current version (enabled, Expiration with Days or Date), in document
    order; ExpiredObjectDeleteMarker-only and noncurrent rules never expire a current version."""
    return tuple(
        r
        for r in config.rules
        if r.enabled
        and r.expiration is not None
        and (r.expiration.days is not None or r.expiration.date is not None)
    )


def object_expiration(
    rules: tuple[LifecycleRule, ...],
    key: str,
    size: int,
    tags: dict[str, str],
    last_modified: float,
    day_seconds: float,
) -> tuple[float, str] | None:
    """(when, rule id) of the earliest expiration of a current version that ``rules`` (from
    ``expiry_rules``) schedule, or None: what x-amz-expiration reports. ``when`` is the time the
    lifecycle worker's own test (``now >= due_time(...)`` or the rule's Date) first holds, so the
    header never promises a deletion earlier or later than rs3gw performs it; on a tie the first
    rule in document order wins, as the worker expires with the first due rule."""
    best: tuple[float, str] | None = None
    for r in rules:
        exp = r.expiration
        if exp is None or not r.filter.matches(key, size, tags):
            continue
        when = exp.date if exp.date is not None else due_time(last_modified, exp.days or 0, day_seconds)
        if best is None or when < best[0]:
            best = (when, r.id)
    return best


@lru_cache(maxsize=1024)
def stored_expiry_rules(text: str) -> tuple[LifecycleRule, ...]:
    """``expiry_rules`` of a stored document, parsed once per document text: GET/HEAD/PUT answer
    x-amz-expiration from the text authorization read with the bucket, and parsing it per request
    would cost more than the rest of a HEAD. A changed document is a new key, so no invalidation is
    needed. A document that does not load (never written by ``dumps``) schedules nothing here,
    rather than failing every read of the bucket."""
    try:
        return expiry_rules(loads(text))
    except (ValueError, KeyError, TypeError):
        return ()


def abort_rules(config: LifecycleConfig) -> tuple[LifecycleRule, ...]:
    """The rules that abort incomplete multipart uploads (enabled, AbortIncompleteMultipartUpload),
    in document order: the only rules the lifecycle worker's upload pass consults."""
    return tuple(r for r in config.rules if r.enabled and r.abort_days is not None)


def upload_abort(
    rules: tuple[LifecycleRule, ...], key: str, initiated: float, day_seconds: float
) -> tuple[float, str] | None:
    """(when, rule id) of the earliest abort of an upload of ``key`` initiated at ``initiated``
    that ``rules`` (from ``abort_rules``) schedule, or None: what x-amz-abort-date and
    x-amz-abort-rule-id report. Matching is by prefix only, exactly as the worker's upload pass
    matches (an upload has no tags or size yet; validation refuses tag filters with this action),
    and ``when`` is the time the worker's test ``now >= due_time(initiated, days)`` first holds,
    so the header never promises an abort earlier or later than rs3gw performs it. The worker
    aborts when any rule is due, so the earliest rule is the one reported; on a tie, the first in
    document order."""
    best: tuple[float, str] | None = None
    for r in rules:
        if r.abort_days is None or not key.startswith(r.filter.prefix):
            continue
        when = due_time(initiated, r.abort_days, day_seconds)
        if best is None or when < best[0]:
            best = (when, r.id)
    return best


@lru_cache(maxsize=1024)
def stored_abort_rules(text: str) -> tuple[LifecycleRule, ...]:
    """``abort_rules`` of a stored document, parsed once per document text (a changed document is a
    new key, so no invalidation is needed). A document that does not load schedules nothing here,
    rather than failing every CreateMultipartUpload and ListParts of the bucket."""
    try:
        return abort_rules(loads(text))
    except (ValueError, KeyError, TypeError):
        return ()


# -- storage ------------------------------------------------------------------------------------
def dumps(config: LifecycleConfig) -> str:
    """The stored form (bucket_config "lifecycle")."""
    return json.dumps(asdict(config), separators=(",", ":"), ensure_ascii=False)


def _opt(cls: Any, d: dict[str, Any] | None) -> Any:
    return None if d is None else cls(**d)


def loads(text: str) -> LifecycleConfig:
    d = json.loads(text)
    rules = []
    for r in d["rules"]:
        f = r["filter"]
        rules.append(
            LifecycleRule(
                status=r["status"],
                filter=replace(LifecycleFilter(**f), tags=tuple((k, v) for k, v in f["tags"])),
                id=r["id"],
                expiration=_opt(Expiration, r["expiration"]),
                transitions=tuple(Transition(**t) for t in r["transitions"]),
                noncurrent_expiration=_opt(NoncurrentExpiration, r["noncurrent_expiration"]),
                noncurrent_transitions=tuple(NoncurrentTransition(**t) for t in r["noncurrent_transitions"]),
                abort_days=r["abort_days"],
            )
        )
    return LifecycleConfig(tuple(rules), d["min_size_mode"])

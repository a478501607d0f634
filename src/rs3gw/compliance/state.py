"""What a compliance report is built from: one read of the real state (metadata store, key file,
audit log, scrub status, settings), gathered before any check runs so every finding of one report
describes the same snapshot."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rs3gw.access import acl as acls
from rs3gw.access.policy import load as load_policy
from rs3gw.audit.chain import iter_records, read_key
from rs3gw.audit.service import audit_dir
from rs3gw.audit.verify import verify_log
from rs3gw.auth.users import Iam
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.config import Settings
from rs3gw.engine import lifecycle_rules, object_lock, sse
from rs3gw.engine.quarantine import QUARANTINE_KEY
from rs3gw.engine.version_walk import stored_versions
from rs3gw.meta.store import MetadataStore, all_buckets
from rs3gw.model import Bucket, Owner

POLICY = "policy"  # bucket config names, as the protocol layer stores them
ACL = "acl"
PUBLIC_ACCESS_BLOCK = "public-access-block"
LIFECYCLE = "lifecycle"
SCRUB_STATUS = Path(".rs3gw") / "scrub-status.json"  # written by rs3gw.heal
AUTH_FAILURES = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDeniedInvalidKey"})
SAMPLE = 10  # object keys named in evidence, at most


@dataclass
class BucketState:
    name: str
    owner: str  # display name of the owning account, or its canonical id when unknown
    versioning: str  # "" | "Enabled" | "Suspended"
    default_encryption: str | None  # the bucket default's algorithm (AES256 | aws:kms), None if none
    objects: int = 0  # stored versions, delete markers excluded
    bytes: int = 0
    encrypted_objects: int = 0
    encrypted_bytes: int = 0
    unencrypted_sample: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # "key@version: why"
    public_objects: list[str] = field(default_factory=list)  # object ACLs granting a public group
    policy: str = "none"  # "none" | "private" | "public" | "unreadable"
    acl_public: bool = False
    pab: acls.PublicAccessBlock = acls.NO_BLOCK
    object_lock: bool = False
    lock_default: str = ""  # "GOVERNANCE 30 days", "" for no default retention
    locked_versions: int = 0  # versions under active retention or legal hold
    lifecycle_rules: int = 0  # enabled rules
    expiration_days: list[int] = field(default_factory=list)  # enabled current-version Days expirations
    expiration_dates: int = 0  # enabled rules expiring on a fixed date
    noncurrent_expiration_days: list[int] = field(default_factory=list)


@dataclass
class AuditState:
    enabled: bool
    directory: str
    has_log: bool = False  # an HMAC key exists, so a log was started
    ok: bool = False
    records: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    problems: list[str] = field(default_factory=list)
    last_seen: dict[str, float] = field(default_factory=dict)  # principal name or access key -> ts


@dataclass
class KeyState:
    name: str
    version: int
    created: float  # epoch seconds
    current: bool


@dataclass
class UserState:
    name: str
    source: str  # "config" | "store"
    enabled: bool
    created: float | None  # store users only
    access_keys: list[str]
    last_seen: float | None = None


@dataclass
class State:
    now: float
    data_dir: str
    tls: bool
    encryption_default: str  # the server-wide default for writes that ask for no encryption
    buckets: list[BucketState]
    audit: AuditState
    keys: list[KeyState]
    key_file: bool  # keys.json exists (the local key provider has been used)
    users: list[UserState]
    scrub: dict[str, object] | None  # the last scrub's report, None when none has run


async def gather(settings: Settings, store: MetadataStore, now: float | None = None) -> State:
    now = time.time() if now is None else now
    users = await _users(settings, store)
    pinned = {u.name: u.owner.id for u in settings.users}  # configured accounts may pin their id
    names = {pinned.get(u.name, Owner.for_account(u.name).id): u.name for u in users}
    buckets = [await _bucket(store, b, names, now) for b in await all_buckets(store, list(names))]
    audit = _audit(settings)
    for u in users:
        times = [audit.last_seen[k] for k in (u.name, *u.access_keys) if k in audit.last_seen]
        u.last_seen = max(times) if times else None
    provider = LocalKeyProvider(settings.data_dir)
    kek_list = provider.keys()
    keys = [KeyState(k.name, k.version, _epoch(k.created), k.current) for k in kek_list]
    return State(
        now=now,
        data_dir=str(settings.data_dir),
        tls=settings.tls_cert is not None,
        encryption_default=settings.encryption_default,
        buckets=buckets,
        audit=audit,
        keys=keys,
        key_file=provider.path.exists(),
        users=users,
        scrub=_scrub(settings.data_dir),
    )


async def _users(settings: Settings, store: MetadataStore) -> list[UserState]:
    out = [UserState(u.name, "config", True, None, [u.access_key]) for u in settings.users]
    iam = Iam(store, LocalKeyProvider(settings.data_dir))
    keys: dict[str, list[str]] = {}
    for k in await iam.list_keys():
        keys.setdefault(k.user, []).append(k.access_key)
    for u in await iam.list_users():
        out.append(UserState(u.name, "store", u.enabled, u.created, keys.get(u.name, [])))
    return out


async def _bucket(store: MetadataStore, b: Bucket, names: dict[str, str], now: float) -> BucketState:
    enc = await store.get_bucket_config(b.name, sse.CONFIG_NAME)
    st = BucketState(
        b.name,
        names.get(b.owner_id, b.owner_id),
        b.versioning,
        sse.BucketEncryption.load(enc).alg if enc else None,
    )
    text = await store.get_bucket_config(b.name, POLICY)
    if text:
        try:
            st.policy = "public" if load_policy(text, b.name).public else "private"
        except Exception:  # a stored policy this build cannot parse: reported, never trusted
            st.policy = "unreadable"
    st.acl_public = acls.loads(await store.get_bucket_config(b.name, ACL)).public
    st.pab = acls.PublicAccessBlock.loads(await store.get_bucket_config(b.name, PUBLIC_ACCESS_BLOCK))
    lock = await store.get_bucket_config(b.name, object_lock.CONFIG)
    if lock:
        st.object_lock = True
        d = object_lock.LockConfig.loads(lock).default
        if d is not None:
            st.lock_default = f"{d.mode} {d.days} days" if d.days is not None else f"{d.mode} {d.years} years"
    lc = await store.get_bucket_config(b.name, LIFECYCLE)
    if lc:
        for rule in lifecycle_rules.loads(lc).rules:
            if not rule.enabled:
                continue
            st.lifecycle_rules += 1
            if rule.expiration is not None and rule.expiration.days is not None:
                st.expiration_days.append(rule.expiration.days)
            elif rule.expiration is not None and rule.expiration.date is not None:
                st.expiration_dates += 1
            if rule.noncurrent_expiration is not None:
                st.noncurrent_expiration_days.append(rule.noncurrent_expiration.noncurrent_days)
    await _objects(store, st, now)
    return st


async def _objects(store: MetadataStore, st: BucketState, now: float) -> None:
    async for v in stored_versions(store, st.name):
        s = v.meta.system
        st.objects += 1
        st.bytes += v.size
        if "sse-alg" in s or "sse-c-alg" in s:
            st.encrypted_objects += 1
            st.encrypted_bytes += v.size
        elif len(st.unencrypted_sample) < SAMPLE:
            st.unencrypted_sample.append(v.key)
        if QUARANTINE_KEY in s:
            st.quarantined.append(f"{v.key}@{v.version_id}: {s[QUARANTINE_KEY]}")
        if acls.loads(s.get(acls.SYSTEM_KEY)).public and len(st.public_objects) < SAMPLE:
            st.public_objects.append(v.key)
        retention = object_lock.retention_of(s)
        if object_lock.legal_hold_of(s) == "ON" or (retention is not None and retention.active(now)):
            st.locked_versions += 1


def _audit(settings: Settings) -> AuditState:
    directory = audit_dir(settings.audit, settings.data_dir)
    out = AuditState(settings.audit.enabled, str(directory))
    try:
        key = read_key(directory)
    except FileNotFoundError:
        return out
    out.has_log = True
    report = verify_log(directory, key)
    out.ok, out.records = report.ok, report.records
    out.problems = [str(p) for p in report.problems]
    for rec in iter_records(directory):
        ts = rec.get("ts")
        if not isinstance(ts, int | float):
            continue
        out.first_ts = ts if out.first_ts is None else min(out.first_ts, ts)
        out.last_ts = ts if out.last_ts is None else max(out.last_ts, ts)
        if rec.get("type") == "alert" or rec.get("error") in AUTH_FAILURES:
            continue  # a request that failed to authenticate is not activity of the key it names
        for who in (rec.get("principal"), rec.get("access_key")):
            if isinstance(who, str) and who:
                out.last_seen[who] = max(out.last_seen.get(who, 0.0), float(ts))
    return out


def _scrub(data_dir: Path) -> dict[str, object] | None:
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads((data_dir / SCRUB_STATUS).read_text())
        last = doc.get("last") if isinstance(doc, dict) else None
        return last if isinstance(last, dict) else None
    return None


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0

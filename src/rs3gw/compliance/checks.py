"""The checks: each turns one aspect of the gathered State into findings, and each standard names the
control a check provides evidence for. Statuses come from the numbers only; a check that has nothing
to look at says n/a rather than pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rs3gw.compliance.state import BucketState, State
from rs3gw.timefmt import iso8601

PASS, FAIL, WARN, NA = "pass", "fail", "warn", "n/a"
STATUSES = (FAIL, WARN, PASS, NA)
DAY = 86400.0
HIPAA_RETENTION_DAYS = 6 * 365  # 164.316(b)(2)(i): documentation kept six years
SCRUB_MAX_AGE_DAYS = 30


@dataclass(frozen=True)
class Params:
    key_max_age_days: int = 365
    idle_days: int = 90


@dataclass
class Finding:
    check: str
    resource: str  # a bucket, user or key name; "server" for gateway-wide findings
    status: str
    title: str
    evidence: str
    recommendation: str
    data: dict[str, object] = field(default_factory=dict)
    control: str = ""
    control_title: str = ""


# standard -> check -> (control id, control title); a check missing from a standard is not run for it
STANDARDS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "soc2": (
        "SOC 2 (Trust Services Criteria)",
        {
            "encryption-at-rest": ("CC6.1", "Logical access security: protection of data at rest"),
            "encryption-in-transit": ("CC6.7", "Restriction of data transmission"),
            "key-age": ("CC6.1", "Encryption key management"),
            "public-access": ("CC6.1", "Logical access restricted to authorized users"),
            "inactive-users": ("CC6.2", "Removal of access no longer required"),
            "audit-integrity": ("CC7.2", "Monitoring of system components; protected logs"),
            "data-protection": ("A1.2", "Data backup and protection against loss"),
            "retention": ("C1.2", "Disposal of confidential information"),
            "integrity-scrub": ("PI1.5", "Stored data is complete and accurate"),
        },
    ),
    "hipaa": (
        "HIPAA Security Rule (45 CFR 164)",
        {
            "encryption-at-rest": ("164.312(a)(2)(iv)", "Encryption and decryption of ePHI"),
            "encryption-in-transit": ("164.312(e)(2)(ii)", "Transmission security: encryption"),
            "key-age": ("164.312(a)(2)(iv)", "Encryption key management"),
            "public-access": ("164.312(a)(1)", "Access control"),
            "inactive-users": ("164.308(a)(3)(ii)(C)", "Termination procedures"),
            "audit-integrity": ("164.312(b)", "Audit controls"),
            "data-protection": (
                "164.312(c)(1)",
                "Integrity: protect ePHI from improper alteration or destruction",
            ),
            "retention": ("164.316(b)(2)(i)", "Retention of documentation for six years"),
            "integrity-scrub": ("164.312(c)(2)", "Mechanism to authenticate ePHI"),
        },
    ),
    "gdpr": (
        "GDPR (Regulation (EU) 2016/679)",
        {
            "encryption-at-rest": ("Art. 32(1)(a)", "Encryption of personal data"),
            "encryption-in-transit": ("Art. 32(1)(a)", "Encryption of personal data in transit"),
            "key-age": ("Art. 32(1)(a)", "Encryption key management"),
            "public-access": ("Art. 32(1)(b)", "Confidentiality of processing systems"),
            "inactive-users": ("Art. 32(4)", "Access only by authorised persons"),
            "audit-integrity": ("Art. 30", "Records of processing activities"),
            "retention": ("Art. 17 / Art. 5(1)(e)", "Erasure and storage limitation"),
            "integrity-scrub": ("Art. 32(1)(b)", "Integrity of processing systems"),
        },
    ),
}


def _when(ts: float | None) -> str:
    return iso8601(ts) if ts is not None else "never"


def _mib(n: int) -> str:
    return f"{n} bytes" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _no_buckets(check: str, title: str) -> list[Finding]:
    """The single n/a finding of a per-bucket check on a server with no buckets: nothing to judge."""
    return [Finding(check, "server", NA, title, "no buckets", "None.")]


# -- checks ----------------------------------------------------------------------------------------
def encryption_at_rest(s: State, p: Params, standard: str) -> list[Finding]:
    out = []
    for b in s.buckets:
        plain, plain_bytes = b.objects - b.encrypted_objects, b.bytes - b.encrypted_bytes
        default = b.default_encryption or (s.encryption_default if s.encryption_default != "none" else None)
        source = "bucket default" if b.default_encryption else "server default"
        evidence = (
            f"{b.encrypted_objects} of {b.objects} object versions encrypted "
            f"({_mib(b.encrypted_bytes)} of {_mib(b.bytes)}); default encryption: "
            + (f"{default} ({source})" if default else "none")
        )
        data: dict[str, object] = {
            "objects": b.objects,
            "bytes": b.bytes,
            "encrypted_objects": b.encrypted_objects,
            "encrypted_bytes": b.encrypted_bytes,
            "unencrypted_objects": plain,
            "unencrypted_bytes": plain_bytes,
            "default_encryption": default,
        }
        if plain:
            data["unencrypted_sample"] = b.unencrypted_sample
            evidence += f"; unencrypted, e.g.: {', '.join(b.unencrypted_sample)}"
            status, rec = FAIL, "Set bucket default encryption (PutBucketEncryption) and rewrite the "
            rec += "unencrypted objects (CopyObject onto themselves with x-amz-server-side-encryption)."
        elif default is None:
            status = WARN
            rec = "Set bucket default encryption so objects written without an SSE header are encrypted."
        else:
            status, rec = PASS, "None."
        out.append(Finding("encryption-at-rest", b.name, status, "Encryption coverage", evidence, rec, data))
    return out or _no_buckets("encryption-at-rest", "Encryption coverage")


def encryption_in_transit(s: State, p: Params, standard: str) -> list[Finding]:
    if s.tls:
        return [Finding("encryption-in-transit", "server", PASS, "TLS", "tls_cert is configured", "None.")]
    return [
        Finding(
            "encryption-in-transit",
            "server",
            WARN,
            "TLS",
            "no tls_cert in the settings this report was run with (config file / RS3GW_* environment); "
            "flags given only to `rs3gw serve` are not visible here",
            "Serve HTTPS (tls_cert/tls_key) or terminate TLS in front of the gateway, and run the "
            "report with the same config file as the server.",
        )
    ]


def key_age(s: State, p: Params, standard: str) -> list[Finding]:
    current = [k for k in s.keys if k.current]
    if not current:
        why = "no key-encryption keys (keys.json " + ("is empty)" if s.key_file else "does not exist)")
        return [Finding("key-age", "server", NA, "Key rotation", why, "None.")]
    out = []
    for k in current:
        age = (s.now - k.created) / DAY
        versions = sum(1 for x in s.keys if x.name == k.name)
        evidence = (
            f"current version {k.version} of {versions} created {_when(k.created)}, "
            f"{age:.0f} days old (max {p.key_max_age_days})"
        )
        old = age > p.key_max_age_days
        out.append(
            Finding(
                "key-age",
                k.name,
                FAIL if old else PASS,
                "Key rotation",
                evidence,
                "Rotate it: `rs3gw admin key-rotate` (re-wraps data keys only)." if old else "None.",
                {"version": k.version, "versions": versions, "created": k.created, "age_days": round(age, 1)},
            )
        )
    return out


def public_access(s: State, p: Params, standard: str) -> list[Finding]:
    out = []
    for b in s.buckets:
        pab = b.pab
        exposed = []
        if b.policy == "public" and not pab.restrict_public_buckets:
            exposed.append("bucket policy grants public access")
        if b.acl_public and not pab.ignore_public_acls:
            exposed.append("bucket ACL grants a public group")
        if b.public_objects and not pab.ignore_public_acls:
            exposed.append(f"object ACLs grant a public group (e.g. {', '.join(b.public_objects)})")
        blocks = {
            "BlockPublicAcls": pab.block_public_acls,
            "IgnorePublicAcls": pab.ignore_public_acls,
            "BlockPublicPolicy": pab.block_public_policy,
            "RestrictPublicBuckets": pab.restrict_public_buckets,
        }
        off = [k for k, v in blocks.items() if not v]
        evidence = "; ".join(exposed) if exposed else "no public policy, bucket ACL or object ACL in force"
        evidence += f"; policy: {b.policy}; PublicAccessBlock off: {', '.join(off) or 'none'}"
        if b.policy == "unreadable":
            exposed.append("stored policy cannot be parsed")
        if exposed:
            status = FAIL
            rec = "Remove public statements and grants, or enable PublicAccessBlock (all four settings)."
        elif off:
            status, rec = WARN, f"Enable PublicAccessBlock ({', '.join(off)}) so nothing can be made public."
        else:
            status, rec = PASS, "None."
        data: dict[str, object] = {
            "policy": b.policy,
            "bucket_acl_public": b.acl_public,
            "public_objects_sample": b.public_objects,
            "public_access_block": blocks,
            "exposed": exposed,
        }
        out.append(Finding("public-access", b.name, status, "Public access", evidence, rec, data))
    return out or _no_buckets("public-access", "Public access")


def audit_integrity(s: State, p: Params, standard: str) -> list[Finding]:
    a = s.audit
    data: dict[str, object] = {
        "enabled": a.enabled,
        "directory": a.directory,
        "chain_ok": a.ok,
        "records": a.records,
        "first": _when(a.first_ts) if a.has_log else None,
        "last": _when(a.last_ts) if a.has_log else None,
        "problems": a.problems[:20],
    }
    if not a.has_log:
        status, evidence = FAIL, f"no audit log in {a.directory} (no HMAC key)"
        rec = "Enable the audit log ([audit] enabled = true) and run the server with it."
    elif not a.ok:
        status = FAIL
        evidence = f"hash chain BROKEN: {len(a.problems)} problem(s), first: {a.problems[0]}"
        rec = "Investigate the named records (`rs3gw audit verify`); restore the log from a forwarded copy."
    else:
        status = PASS if a.enabled else FAIL
        evidence = f"hash chain verified: {a.records} records from {_when(a.first_ts)} to {_when(a.last_ts)}"
        rec = "None." if a.enabled else "Re-enable the audit log: new requests are not being recorded."
    if not a.enabled:
        evidence += "; audit is DISABLED in the settings"
    return [Finding("audit-integrity", "server", status, "Audit log integrity", evidence, rec, data)]


def data_protection(s: State, p: Params, standard: str) -> list[Finding]:
    out = []
    for b in s.buckets:
        evidence = f"versioning: {b.versioning or 'never enabled'}; object lock: " + (
            f"enabled, default retention {b.lock_default or 'none'}" if b.object_lock else "off"
        )
        evidence += f"; {b.locked_versions} version(s) under retention or legal hold"
        if b.object_lock:
            status, rec = PASS, "None."
        elif b.versioning == "Enabled":
            status = WARN
            rec = "Versions protect against overwrite but can still be deleted; use Object Lock for records."
        else:
            status = FAIL
            rec = "Enable versioning (and Object Lock for data that must not be altered or deleted)."
        data: dict[str, object] = {
            "versioning": b.versioning,
            "object_lock": b.object_lock,
            "default_retention": b.lock_default,
            "locked_versions": b.locked_versions,
        }
        out.append(
            Finding("data-protection", b.name, status, "Versioning and object lock", evidence, rec, data)
        )
    return out or _no_buckets("data-protection", "Versioning and object lock")


def retention(s: State, p: Params, standard: str) -> list[Finding]:
    return [_retention(b, standard) for b in s.buckets] or _no_buckets("retention", "Retention and erasure")


def _retention(b: BucketState, standard: str) -> Finding:
    days = sorted(b.expiration_days)
    expires = bool(days or b.expiration_dates or b.noncurrent_expiration_days)
    evidence = f"{b.lifecycle_rules} enabled lifecycle rule(s); expiration after: " + (
        ", ".join(f"{d} days" for d in days) or "none"
    )
    if b.expiration_dates:
        evidence += f"; {b.expiration_dates} rule(s) expiring on a date"
    if b.noncurrent_expiration_days:
        evidence += f"; noncurrent versions after {min(b.noncurrent_expiration_days)} days"
    if b.object_lock:
        evidence += f"; object lock default retention: {b.lock_default or 'none'}"
    data: dict[str, object] = {
        "lifecycle_rules": b.lifecycle_rules,
        "expiration_days": days,
        "expiration_dates": b.expiration_dates,
        "noncurrent_expiration_days": sorted(b.noncurrent_expiration_days),
        "object_lock_default": b.lock_default,
    }
    # HIPAA wants records kept six years; GDPR wants erasure possible; SOC 2 wants data disposed of.
    title = "Retention period" if standard == "hipaa" else "Retention and erasure"
    short = [d for d in days if d < HIPAA_RETENTION_DAYS]
    if standard == "hipaa" and short:
        status = WARN
        rec = (
            f"Rules expire objects after {min(short)} days, under six years: exclude records that "
            "must be retained, or lengthen the rule."
        )
    elif standard == "hipaa":
        status, rec = PASS, "None."
    elif standard == "gdpr" and b.lock_default.startswith("COMPLIANCE"):
        status = WARN
        rec = (
            "COMPLIANCE-mode retention blocks erasure requests until it ends; keep personal data "
            "out of this bucket or use GOVERNANCE mode."
        )
    elif expires:
        status, rec = PASS, "None."
    else:
        status, rec = WARN, "Add a lifecycle expiration rule so data is not kept longer than needed."
    return Finding("retention", b.name, status, title, evidence, rec, data)


def inactive_users(s: State, p: Params, standard: str) -> list[Finding]:
    out = []
    limit = s.now - p.idle_days * DAY
    for u in s.users:
        idle = (s.now - u.last_seen) / DAY if u.last_seen is not None else None
        evidence = (
            f"{u.source} account, {'enabled' if u.enabled else 'disabled'}; last seen {_when(u.last_seen)}"
        )
        if idle is not None:
            evidence += f" ({idle:.0f} days ago; limit {p.idle_days})"
        if u.created is not None:
            evidence += f"; created {_when(u.created)}"
        data: dict[str, object] = {
            "source": u.source,
            "enabled": u.enabled,
            "last_seen": u.last_seen,
            "idle_days": round(idle, 1) if idle is not None else None,
            "access_keys": len(u.access_keys),
        }
        if not u.enabled:
            status, rec = PASS, "None (disabled)."
        elif u.last_seen is not None and u.last_seen >= limit:
            status, rec = PASS, "None."
        elif u.last_seen is None and (u.created or 0) > limit and u.source == "store":
            status, rec = WARN, "New account not used yet; review it if it stays unused."
        elif u.last_seen is None and s.audit.records == 0:
            status, rec = WARN, "No audit records to judge activity by; enable the audit log."
        else:
            status = FAIL
            rec = (
                "Disable or delete the account (`rs3gw admin user disable`), or remove it from the "
                "configuration if it is no longer needed."
            )
        out.append(Finding("inactive-users", u.name, status, "Inactive accounts", evidence, rec, data))
    return out


def integrity_scrub(s: State, p: Params, standard: str) -> list[Finding]:
    quarantined = [f"{b.name}/{q}" for b in s.buckets for q in b.quarantined]
    last = s.scrub
    data: dict[str, object] = {"quarantined": quarantined[:20], "quarantined_count": len(quarantined)}
    done: float | None = None
    if last is None:
        evidence = "no scrub has run"
    else:
        finished = last.get("finished")
        done = float(finished) if isinstance(finished, int | float) else None
        corrupt = last.get("corrupt")
        ncorrupt = len(corrupt) if isinstance(corrupt, list) else 0
        evidence = (
            f"last scrub finished {_when(done)}: {last.get('versions_checked')} versions checked, "
            f"{ncorrupt} corrupt"
        )
        data.update(
            {"last_scrub": done, "versions_checked": last.get("versions_checked"), "corrupt": ncorrupt}
        )
    evidence += f"; {len(quarantined)} quarantined object version(s) in the store"
    if quarantined:
        evidence += f" (e.g. {quarantined[0]})"
        status = FAIL
        rec = "Restore the quarantined versions from a backup or replica, then delete the damaged ones."
    elif last is None:
        status, rec = WARN, "Run `rs3gw scrub run` or set [scrub] interval so stored data is verified."
    elif done is None or s.now - done > SCRUB_MAX_AGE_DAYS * DAY:
        status, rec = WARN, f"The last scrub is over {SCRUB_MAX_AGE_DAYS} days old; scrub regularly."
    else:
        status, rec = PASS, "None."
    return [Finding("integrity-scrub", "server", status, "Stored data integrity", evidence, rec, data)]


CHECKS: dict[str, Callable[[State, Params, str], list[Finding]]] = {
    "encryption-at-rest": encryption_at_rest,
    "encryption-in-transit": encryption_in_transit,
    "key-age": key_age,
    "public-access": public_access,
    "inactive-users": inactive_users,
    "audit-integrity": audit_integrity,
    "data-protection": data_protection,
    "retention": retention,
    "integrity-scrub": integrity_scrub,
}


def run_checks(state: State, standard: str, params: Params) -> list[Finding]:
    out: list[Finding] = []
    for check, (control, title) in STANDARDS[standard][1].items():
        for f in CHECKS[check](state, params, standard):
            f.control, f.control_title = control, title
            out.append(f)
    return out

"""Access control lists: canned ACLs, x-amz-grant-* headers, and whether a grant admits a requester.

Grants name the resource owner and the bucket owner symbolically (``@owner``, ``@bucket-owner``)
so a canned ACL can be recorded before the object exists, e.g. on PutObject or multipart create.
Stored compactly as JSON in bucket config "acl" and in ``ObjectMeta.system["acl"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rs3gw import errors
from rs3gw.access.policy import Requester

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS)
OWNER = "@owner"
BUCKET_OWNER = "@bucket-owner"
PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
SYSTEM_KEY = "acl"
GRANT_HEADERS = {
    "x-amz-grant-full-control": "FULL_CONTROL",
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*', re.IGNORECASE)


@dataclass(frozen=True)
class Grant:
    grantee: str  # a canonical id, a group URI, OWNER or BUCKET_OWNER
    permission: str

    def resolve(self, owner_id: str, bucket_owner_id: str) -> Grant:
        who = {OWNER: owner_id, BUCKET_OWNER: bucket_owner_id}.get(self.grantee, self.grantee)
        return Grant(who, self.permission)


@dataclass(frozen=True)
class Acl:
    grants: tuple[Grant, ...]

    def dumps(self) -> str:
        return json.dumps([[g.grantee, g.permission] for g in self.grants], separators=(",", ":"))

    @property
    def public(self) -> bool:
        """AWS's definition: a grant to AllUsers or AuthenticatedUsers."""
        return any(g.grantee in GROUPS for g in self.grants)

    def resolved(self, owner_id: str, bucket_owner_id: str) -> list[Grant]:
        """Concrete grants for GetBucketAcl / GetObjectAcl, duplicates (owner = bucket owner) merged."""
        out: list[Grant] = []
        for g in self.grants:
            r = g.resolve(owner_id, bucket_owner_id)
            if r not in out:
                out.append(r)
        return out

    def allows(
        self, permission: str, who: Requester, owner_id: str, bucket_owner_id: str, ignore_public: bool
    ) -> bool:
        for g in self.grants:
            if g.permission not in (permission, "FULL_CONTROL"):
                continue
            if g.grantee == ALL_USERS or (g.grantee == AUTHENTICATED_USERS and not who.anonymous):
                if not ignore_public:
                    return True
            elif not who.anonymous and g.resolve(owner_id, bucket_owner_id).grantee == who.canonical_id:
                return True
        return False


def loads(text: str | None) -> Acl:
    """The stored ACL; absent means private (the owner has FULL_CONTROL, nobody else anything)."""
    if not text:
        return PRIVATE
    return Acl(tuple(Grant(str(g), str(p)) for g, p in json.loads(text)))


def _canned(*extra: tuple[str, str]) -> Acl:
    return Acl((Grant(OWNER, "FULL_CONTROL"), *(Grant(g, p) for g, p in extra)))


PRIVATE = _canned()
CANNED: dict[str, Acl] = {
    "private": PRIVATE,
    "public-read": _canned((ALL_USERS, "READ")),
    "public-read-write": _canned((ALL_USERS, "READ"), (ALL_USERS, "WRITE")),
    "authenticated-read": _canned((AUTHENTICATED_USERS, "READ")),
    "bucket-owner-read": _canned((BUCKET_OWNER, "READ")),
    "bucket-owner-full-control": _canned((BUCKET_OWNER, "FULL_CONTROL")),
}
_UNSUPPORTED_CANNED = frozenset({"aws-exec-read", "log-delivery-write"})


def from_headers(headers: Mapping[str, str]) -> Acl | None:
    """The ACL a request declares with x-amz-acl or x-amz-grant-* headers; None if neither."""
    canned = headers.get("x-amz-acl")
    named = [(h, p) for h, p in GRANT_HEADERS.items() if h in headers]
    if canned is not None and named:
        raise errors.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        return canned_acl(canned.strip())
    if not named:
        return None
    grants: list[Grant] = []
    for header, permission in named:
        for item in headers[header].split(","):
            grants.append(Grant(_grantee(item, header), permission))
    return Acl(tuple(grants))


def canned_acl(name: str) -> Acl:
    acl = CANNED.get(name)
    if acl is not None:
        return acl
    if name in _UNSUPPORTED_CANNED:
        raise errors.NotImplementedError_(f"The canned ACL {name} is not implemented by rs3gw")
    raise errors.InvalidArgument(None, ArgumentName="x-amz-acl", ArgumentValue=name)


def _grantee(item: str, header: str) -> str:
    m = _GRANTEE.fullmatch(item)
    if m is None or not m.group(2):
        raise errors.InvalidArgument("Invalid grant header", ArgumentName=header, ArgumentValue=item)
    kind, value = m.group(1).lower(), m.group(2)
    return grantee(kind, value)


def grantee(kind: str, value: str) -> str:
    """One grantee of a header or XML grant: "id", "uri" or "emailaddress" (lower-case kind)."""
    if kind == "emailaddress":
        raise errors.error_class("UnresolvableGrantByEmailAddress")(EmailAddress=value)
    if kind == "uri":
        if value == LOG_DELIVERY:
            raise errors.NotImplementedError_("Grants to the LogDelivery group are not implemented by rs3gw")
        if value not in GROUPS:
            raise errors.InvalidArgument("Invalid group uri", ArgumentName="uri", ArgumentValue=value)
    return value


def system_entry(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``ObjectMeta.system`` entry for the ACL a write request declares (none: private)."""
    acl = from_headers(headers)
    return {SYSTEM_KEY: acl.dumps()} if acl is not None else {}


@dataclass(frozen=True)
class PublicAccessBlock:
    """Bucket-level Block Public Access; stored as JSON in bucket config "public-access-block"."""

    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    def dumps(self) -> str:
        return json.dumps(
            [
                self.block_public_acls,
                self.ignore_public_acls,
                self.block_public_policy,
                self.restrict_public_buckets,
            ]
        )

    @classmethod
    def loads(cls, text: str | None) -> PublicAccessBlock:
        if not text:
            return NO_BLOCK
        a, b, c, d = json.loads(text)
        return cls(bool(a), bool(b), bool(c), bool(d))


NO_BLOCK = PublicAccessBlock()

"""The decision for one request: explicit Deny → owner → policy Allow → ACL grant → deny.

Follows AWS's bucket-level evaluation ("How Amazon S3 authorizes a request"), simplified to
rs3gw's model where every user is its own account: the bucket owner has full access unless a
policy explicitly denies it; other users and anonymous callers need a policy Allow or an ACL
grant; Block Public Access settings filter public policies and public grants.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rs3gw.access.acl import NO_BLOCK, PRIVATE, Acl, PublicAccessBlock
from rs3gw.access.actions import OWNER_ONLY, POLICY_ADMIN, Action
from rs3gw.access.policy import Facts, Policy


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    OBJECT_ACL = "object-acl"  # undecided until the object's own ACL is read


@dataclass(frozen=True)
class BucketAccess:
    """A bucket's access documents, parsed; acl and pab are read only for non-owners."""

    owner_id: str
    policy: Policy | None
    acl: Acl = PRIVATE
    pab: PublicAccessBlock = NO_BLOCK


def is_owner(facts: Facts, owner_id: str) -> bool:
    return not facts.requester.anonymous and facts.requester.canonical_id == owner_id


def bucket_verdict(operation: str, action: Action, facts: Facts, b: BucketAccess) -> Verdict:
    owner = is_owner(facts, b.owner_id)
    if operation in OWNER_ONLY and not owner:
        return Verdict.DENY
    said = b.policy.evaluate(facts) if b.policy is not None else None
    if said == "Deny" and not (owner and operation in POLICY_ADMIN):
        return Verdict.DENY
    if owner:
        return Verdict.ALLOW
    if said == "Allow" and not (b.pab.restrict_public_buckets and b.policy is not None and b.policy.public):
        return Verdict.ALLOW
    if action.acl is None:
        return Verdict.DENY
    if action.on_object_acl:
        return Verdict.OBJECT_ACL
    ok = b.acl.allows(action.acl, facts.requester, b.owner_id, b.owner_id, b.pab.ignore_public_acls)
    return Verdict.ALLOW if ok else Verdict.DENY


def object_allows(action: Action, facts: Facts, b: BucketAccess, acl: Acl, object_owner: str) -> bool:
    """The object's ACL decides reads of objects not granted by policy (the default grants its writer)."""
    assert action.acl is not None
    return acl.allows(action.acl, facts.requester, object_owner, b.owner_id, b.pab.ignore_public_acls)


def may_bypass_governance(facts: Facts, b: BucketAccess) -> bool:
    """x-amz-bypass-governance-retention counts only for the bucket owner or a caller a policy grants
    s3:BypassGovernanceRetention (``facts.action``); an explicit Deny takes it from anyone."""
    said = b.policy.evaluate(facts) if b.policy is not None else None
    if said == "Deny":
        return False
    if is_owner(facts, b.owner_id):
        return True
    return said == "Allow" and not (
        b.pab.restrict_public_buckets and b.policy is not None and b.policy.public
    )

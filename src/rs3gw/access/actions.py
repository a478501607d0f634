"""S3 operation → IAM action, the resource it acts on, and the ACL permission that can grant it.

From AWS's "Required permissions for Amazon S3 API operations" and "Access control list (ACL)
overview" (ACL permission ↔ policy action mapping). An operation missing here (rs3gw extensions,
brand-new AWS operations) is reachable by the bucket owner only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["bucket", "object", "none"]


@dataclass(frozen=True)
class Action:
    name: str  # e.g. "s3:GetObject"
    kind: Kind  # what the Resource ARN names: the bucket, an object in it, or nothing
    acl: str | None = None  # ACL permission that grants it (bucket ACL for bucket kind and writes)
    on_object_acl: bool = False  # the grant is read from the object's ACL, not the bucket's
    versioned: str | None = None  # the action when the request names a versionId


def _b(name: str, acl: str | None = None) -> Action:
    return Action(f"s3:{name}", "bucket", acl)


def _o(name: str, acl: str | None = None, obj_acl: bool = False, versioned: str | None = None) -> Action:
    return Action(f"s3:{name}", "object", acl, obj_acl, f"s3:{versioned}" if versioned else None)


_PUT = _o("PutObject", "WRITE")

ACTIONS: dict[str, Action] = {
    "AbortMultipartUpload": _o("AbortMultipartUpload", "WRITE"),
    "CompleteMultipartUpload": _PUT,
    "CopyObject": _PUT,
    "CreateBucket": _b("CreateBucket"),
    "CreateMultipartUpload": _PUT,
    "DeleteBucket": _b("DeleteBucket"),
    "DeleteBucketAnalyticsConfiguration": _b("PutAnalyticsConfiguration"),
    "DeleteBucketCors": _b("PutBucketCORS"),
    "DeleteBucketEncryption": _b("PutEncryptionConfiguration"),
    "DeleteBucketIntelligentTieringConfiguration": _b("PutIntelligentTieringConfiguration"),
    "DeleteBucketInventoryConfiguration": _b("PutInventoryConfiguration"),
    "DeleteBucketLifecycle": _b("PutLifecycleConfiguration"),
    "DeleteBucketMetricsConfiguration": _b("PutMetricsConfiguration"),
    "DeleteBucketOwnershipControls": _b("PutBucketOwnershipControls"),
    "DeleteBucketPolicy": _b("DeleteBucketPolicy"),
    "DeleteBucketReplication": _b("PutReplicationConfiguration"),
    "DeleteBucketTagging": _b("PutBucketTagging"),
    "DeleteBucketWebsite": _b("DeleteBucketWebsite"),
    "DeleteObject": _o("DeleteObject", "WRITE", versioned="DeleteObjectVersion"),
    "DeleteObjectTagging": _o("DeleteObjectTagging", versioned="DeleteObjectVersionTagging"),
    "DeleteObjects": _o("DeleteObject", "WRITE"),  # checked per key by the handler
    "DeletePublicAccessBlock": _b("PutBucketPublicAccessBlock"),
    "GetBucketAccelerateConfiguration": _b("GetAccelerateConfiguration"),
    "GetBucketAcl": _b("GetBucketAcl", "READ_ACP"),
    "GetBucketAnalyticsConfiguration": _b("GetAnalyticsConfiguration"),
    "GetBucketCors": _b("GetBucketCORS"),
    "GetBucketEncryption": _b("GetEncryptionConfiguration"),
    "GetBucketIntelligentTieringConfiguration": _b("GetIntelligentTieringConfiguration"),
    "GetBucketInventoryConfiguration": _b("GetInventoryConfiguration"),
    "GetBucketLifecycle": _b("GetLifecycleConfiguration"),
    "GetBucketLifecycleConfiguration": _b("GetLifecycleConfiguration"),
    "GetBucketLocation": _b("GetBucketLocation"),
    "GetBucketLogging": _b("GetBucketLogging"),
    "GetBucketMetricsConfiguration": _b("GetMetricsConfiguration"),
    "GetBucketNotification": _b("GetBucketNotification"),
    "GetBucketNotificationConfiguration": _b("GetBucketNotification"),
    "GetBucketOwnershipControls": _b("GetBucketOwnershipControls"),
    "GetBucketPolicy": _b("GetBucketPolicy"),
    "GetBucketPolicyStatus": _b("GetBucketPolicyStatus"),
    "GetBucketReplication": _b("GetReplicationConfiguration"),
    "GetBucketRequestPayment": _b("GetBucketRequestPayment"),
    "GetBucketTagging": _b("GetBucketTagging"),
    "GetBucketVersioning": _b("GetBucketVersioning"),
    "GetBucketWebsite": _b("GetBucketWebsite"),
    "GetObject": _o("GetObject", "READ", True, "GetObjectVersion"),
    "GetObjectAcl": _o("GetObjectAcl", "READ_ACP", True, "GetObjectVersionAcl"),
    "GetObjectAttributes": _o("GetObjectAttributes", versioned="GetObjectVersionAttributes"),
    "GetObjectLegalHold": _o("GetObjectLegalHold"),
    "GetObjectLockConfiguration": _b("GetBucketObjectLockConfiguration"),
    "GetObjectRetention": _o("GetObjectRetention"),
    "GetObjectTagging": _o("GetObjectTagging", versioned="GetObjectVersionTagging"),
    "GetObjectTorrent": _o("GetObjectTorrent", "READ", True),
    "GetPublicAccessBlock": _b("GetBucketPublicAccessBlock"),
    "HeadBucket": _b("ListBucket", "READ"),
    "HeadObject": _o("GetObject", "READ", True, "GetObjectVersion"),
    "ListBucketAnalyticsConfigurations": _b("GetAnalyticsConfiguration"),
    "ListBucketIntelligentTieringConfigurations": _b("GetIntelligentTieringConfiguration"),
    "ListBucketInventoryConfigurations": _b("GetInventoryConfiguration"),
    "ListBucketMetricsConfigurations": _b("GetMetricsConfiguration"),
    "ListBuckets": Action("s3:ListAllMyBuckets", "none"),
    "ListMultipartUploads": _b("ListBucketMultipartUploads", "READ"),
    "ListObjectVersions": _b("ListBucketVersions", "READ"),
    "ListObjects": _b("ListBucket", "READ"),
    "ListObjectsV2": _b("ListBucket", "READ"),
    "ListParts": _o("ListMultipartUploadParts"),
    "PutBucketAccelerateConfiguration": _b("PutAccelerateConfiguration"),
    "PutBucketAcl": _b("PutBucketAcl", "WRITE_ACP"),
    "PutBucketAnalyticsConfiguration": _b("PutAnalyticsConfiguration"),
    "PutBucketCors": _b("PutBucketCORS"),
    "PutBucketEncryption": _b("PutEncryptionConfiguration"),
    "PutBucketIntelligentTieringConfiguration": _b("PutIntelligentTieringConfiguration"),
    "PutBucketInventoryConfiguration": _b("PutInventoryConfiguration"),
    "PutBucketLifecycle": _b("PutLifecycleConfiguration"),
    "PutBucketLifecycleConfiguration": _b("PutLifecycleConfiguration"),
    "PutBucketLogging": _b("PutBucketLogging"),
    "PutBucketMetricsConfiguration": _b("PutMetricsConfiguration"),
    "PutBucketNotification": _b("PutBucketNotification"),
    "PutBucketNotificationConfiguration": _b("PutBucketNotification"),
    "PutBucketOwnershipControls": _b("PutBucketOwnershipControls"),
    "PutBucketPolicy": _b("PutBucketPolicy"),
    "PutBucketReplication": _b("PutReplicationConfiguration"),
    "PutBucketRequestPayment": _b("PutBucketRequestPayment"),
    "PutBucketTagging": _b("PutBucketTagging"),
    "PutBucketVersioning": _b("PutBucketVersioning"),
    "PutBucketWebsite": _b("PutBucketWebsite"),
    "PutObject": _PUT,
    "PutObjectAcl": _o("PutObjectAcl", "WRITE_ACP", True, "PutObjectVersionAcl"),
    "PutObjectLegalHold": _o("PutObjectLegalHold"),
    "PutObjectLockConfiguration": _b("PutBucketObjectLockConfiguration"),
    "PutObjectRetention": _o("PutObjectRetention"),
    "PutObjectTagging": _o("PutObjectTagging", versioned="PutObjectVersionTagging"),
    "PutPublicAccessBlock": _b("PutBucketPublicAccessBlock"),
    "RestoreObject": _o("RestoreObject"),
    "SelectObjectContent": _o("GetObject", "READ", True),
    "UploadPart": _PUT,
    "UploadPartCopy": _PUT,
}

# Only principals of the bucket owner's account may call these (AWS answers others 403/405);
# in rs3gw every user is its own account, so: the bucket owner only, whatever a policy says.
OWNER_ONLY = frozenset(
    {
        "PutBucketPolicy",
        "GetBucketPolicy",
        "DeleteBucketPolicy",
        "GetBucketPolicyStatus",
        "PutPublicAccessBlock",
        "GetPublicAccessBlock",
        "DeletePublicAccessBlock",
    }
)

# Never lockable by a policy Deny for the owner (AWS: the root user can always manage the policy).
POLICY_ADMIN = frozenset({"PutBucketPolicy", "GetBucketPolicy", "DeleteBucketPolicy"})

_EXTRA_KNOWN = (
    "BypassGovernanceRetention",
    "GetObjectVersionForReplication",
    "GetObjectVersionTorrent",
    "ListAllMyBuckets",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "ObjectOwnerOverrideToBucketOwner",
    "PutObjectVersionTagging",
)


def _known() -> dict[str, Kind]:
    out: dict[str, Kind] = {}
    for a in ACTIONS.values():
        out[a.name.lower()] = a.kind
        if a.versioned:
            out[a.versioned.lower()] = a.kind
    for name in _EXTRA_KNOWN:
        on_object = "Object" in name or "Replicate" in name or name == "BypassGovernanceRetention"
        out.setdefault(f"s3:{name}".lower(), "object" if on_object else "none")
    return out


#: Every action a policy may name (lower-case) → the kind of resource it applies to.
KNOWN_ACTIONS: dict[str, Kind] = _known()


def action_name(action: Action, version_id: str | None) -> str:
    """S3 checks the ...Version action when the request names a version (AWS permission table)."""
    return action.versioned if version_id is not None and action.versioned else action.name

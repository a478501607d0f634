"""Authorization on the request path: reads a bucket's access documents and asks ``rs3gw.access``.

The common case (the bucket owner, signed) costs one bucket-config read (the policy); other
callers also read the bucket ACL and Block Public Access settings, and the object's ACL only
when neither the policy nor the bucket decided.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import unquote

from rs3gw import errors
from rs3gw.access import acl as acls
from rs3gw.access import conditions as cond
from rs3gw.access.actions import ACTIONS, Action, action_name
from rs3gw.access.decide import BucketAccess, Verdict, bucket_verdict, may_bypass_governance, object_allows
from rs3gw.access.policy import S3_ARN, Facts, Policy, Requester, load, load_identity
from rs3gw.auth.verify import AuthResult, PayloadMode, payload_mode
from rs3gw.engine import Engine
from rs3gw.engine import tags as tag_rules
from rs3gw.engine.core import PUT_CONFIGS
from rs3gw.model import Account, Bucket, ObjectVersion, Owner
from rs3gw.protocol.request import Request

POLICY = "policy"
ACL = "acl"
PUBLIC_ACCESS_BLOCK = "public-access-block"
LIFECYCLE = "lifecycle"
# Operations whose response carries x-amz-expiration: their authorization read of the bucket also
# returns its lifecycle document (one query, see ``Access.bucket``), so the header costs no query.
EXPIRATION_OPS = frozenset(
    {"GetObject", "HeadObject", "PutObject", "PostObject", "CopyObject", "CompleteMultipartUpload"}
)
_POLICY_AND_LIFECYCLE = (POLICY, LIFECYCLE)
# PutObject and POST Object read the documents the write needs (Object Lock default, default
# encryption, compression) in that same query: a small PUT then reads its bucket once, not twice.
WRITE_OPS = frozenset({"PutObject", "PostObject"})
_WRITE_DOCS = (*_POLICY_AND_LIFECYCLE, *PUT_CONFIGS)
BYPASS_GOVERNANCE = "s3:BypassGovernanceRetention"
# The canonical id S3 reports for anonymous requesters.
ANONYMOUS = Account(Owner("65a011a29cdf8ec533ec3d1ccaae921c", "anonymous"), "", "")
# Operations whose request may declare an ACL in headers (x-amz-acl, x-amz-grant-*).
ACL_HEADER_OPS = frozenset(
    {"CreateBucket", "PutObject", "CopyObject", "CreateMultipartUpload", "PutBucketAcl", "PutObjectAcl"}
)
_PREFIX_OPS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"})
_LIST_PARAMS = (("prefix", cond.PREFIX), ("delimiter", cond.DELIMITER), ("max-keys", cond.MAX_KEYS))
# Operations whose policy context carries s3:ExistingObjectTag/<key>: those AWS lists for the key
# (reads of an object and of its ACL / tags / attributes, and rewrites of its ACL / tags).
_EXISTING_TAG_OPS = frozenset(
    {
        "GetObject",
        "HeadObject",
        "GetObjectAcl",
        "PutObjectAcl",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "GetObjectAttributes",
    }
)
# Operations that write an object whose x-amz-tagging header sets s3:RequestObjectTag/<key> (POST
# Object: its form's tagging field, which dispatch turns into that header).
_REQUEST_TAG_OPS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload", "PostObject"})
# The operation whose request tags are its XML body (``BodyTags``), read before authorization.
BODY_TAG_OP = "PutObjectTagging"
_NO_BUCKET_OPS = frozenset({"CreateBucket", "ListBuckets"})
_SIGNED_STREAMS = (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)


def anonymous_auth(req: Request) -> AuthResult:
    """An unsigned request keeps the payload checks it declares; chunk signatures need a signer."""
    declared = req.headers.get("x-amz-content-sha256")
    mode = payload_mode(declared) if declared is not None else PayloadMode.UNSIGNED
    if mode in _SIGNED_STREAMS:
        raise errors.AccessDenied("Signed streaming payloads need a signed request")
    sha = declared if mode == PayloadMode.SIGNED else None
    return AuthResult("", mode, sha, None, False)


@dataclasses.dataclass(frozen=True)
class BodyTags:
    """PutObjectTagging's tag set, read from its XML body and parsed once, before authorization,
    because AWS evaluates s3:RequestObjectTag/<key> and s3:RequestObjectTagKeys for it; the handler
    then takes the tags from here instead of reading the body again. ``error`` is what reading,
    parsing or validating the body raised: the handler answers it after authorization, so a caller
    without permission still gets AccessDenied, and the policy sees no tags (as for a bad
    x-amz-tagging header), which is safe because the handler refuses the request regardless."""

    tags: dict[str, str]
    error: errors.S3Error | None = None


@lru_cache(maxsize=1024)
def _requester(canonical_id: str, name: str, access_key: str, anonymous: bool) -> Requester:
    """Requester values are frozen and a pure function of these fields: one per caller, not per request."""
    return Requester(canonical_id, name, access_key, anonymous)


@lru_cache(maxsize=1024)
def _owner_only(owner_id: str) -> BucketAccess:
    """The owner's view of a bucket without a policy (frozen, a pure function of the owner id)."""
    return BucketAccess(owner_id, None)


class Access:
    """One request's authorizer; each bucket's documents are read at most once per request."""

    def __init__(
        self,
        engine: Engine,
        req: Request,
        account: Account,
        anonymous: bool,
        owners: Mapping[str, Owner],
        identity_policy: str | None = None,
    ) -> None:
        self.engine = engine
        # The caller's identity policy (validated when stored; a bad one denies rather than 500s).
        self.identity: Policy | None = None
        self._identity_broken = False
        if identity_policy and not anonymous:
            try:
                self.identity = load_identity(identity_policy)
            except errors.S3Error:
                self._identity_broken = True
        self.req = req
        self.owners = owners
        owner = account.owner
        self.requester = _requester(owner.id, owner.display_name, account.access_key, anonymous)
        self._buckets: dict[str, BucketAccess | None] = {}
        # Objects read for authorization (existing tags, object ACL), each at most once per request.
        self._objects: dict[tuple[str, str, str | None], ObjectVersion | None] = {}
        self._records: dict[str, Bucket] = {}  # bucket records read here, for the handler (known_bucket)
        # Lifecycle documents read with those records (EXPIRATION_OPS only), for known_lifecycle.
        self._lifecycle: dict[str, str | None] = {}
        # The write documents read with those records (WRITE_OPS only), for known_write_docs.
        self._write_docs: dict[str, dict[str, str]] = {}
        # PutObjectTagging's body tags, set by the protocol layer before ``authorize`` (None: not read).
        self.body_tags: BodyTags | None = None

    async def authorize(self, operation: str) -> None:
        """Raise AccessDenied unless the request's operation is allowed; dispatch calls this once."""
        req = self.req
        if operation in _NO_BUCKET_OPS or not req.bucket:
            if self.requester.anonymous:
                raise errors.AccessDenied()
        elif operation != "DeleteObjects":  # the handler checks each key (s3:DeleteObject)
            await self.check(operation, req.bucket, req.key, req.query.get("versionId"))
        if operation in ACL_HEADER_OPS:
            await self._check_declared_acl(operation)

    async def check(self, operation: str, bucket: str, key: str | None, version_id: str | None) -> None:
        """Raise AccessDenied unless ``operation`` on bucket (and key) is allowed; a missing bucket
        passes so the handler answers NoSuchBucket as S3 does."""
        b = await self.bucket(bucket)
        if b is None:
            return
        # Nothing to evaluate (no policy, no identity policy): the signed owner is allowed, as
        # everything below would decide; other callers go on to the full evaluation.
        who = self.requester
        plain = b.policy is None and self.identity is None and not self._identity_broken
        if plain and not who.anonymous and who.canonical_id == b.owner_id:
            return
        action = ACTIONS.get(operation)
        facts = self._facts(action, bucket, key, version_id) if action else None
        if action is None or facts is None:
            if self.requester.anonymous or self.requester.canonical_id != b.owner_id:
                raise errors.AccessDenied()
            return
        if key is not None and operation in _EXISTING_TAG_OPS and self._needs_existing_tags(b):
            facts = await self._with_existing_tags(facts, bucket, key, version_id)
        self._check_identity(facts, b)
        verdict = bucket_verdict(operation, action, facts, b)
        if verdict is Verdict.ALLOW:
            return
        if (
            verdict is Verdict.OBJECT_ACL
            and key is not None
            and await self._object_grants(action, facts, b, bucket, key, version_id)
        ):
            return
        raise errors.AccessDenied()

    def _check_identity(self, facts: Facts, b: BucketAccess) -> None:
        """The caller's identity policy, before the bucket side (README "Identity policies"): an
        explicit Deny always wins; on its own buckets a user needs nothing more (the policy only
        restricts), on another account's bucket — a cross-account request — the identity policy,
        when the user has one, must Allow as well as the bucket policy/ACL."""
        if self._identity_broken:
            raise errors.AccessDenied()
        if self.identity is None:
            return
        said = self.identity.evaluate(facts)
        if said == "Deny":
            raise errors.AccessDenied()
        if said != "Allow" and self.requester.canonical_id != b.owner_id:
            raise errors.AccessDenied()

    def _needs_existing_tags(self, b: BucketAccess) -> bool:
        return (b.policy is not None and b.policy.needs_existing_tags) or (
            self.identity is not None and self.identity.needs_existing_tags
        )

    async def _with_existing_tags(self, facts: Facts, bucket: str, key: str, version_id: str | None) -> Facts:
        """``facts`` plus s3:ExistingObjectTag/<key> for each tag of the object acted on (none when
        it does not exist: the keys are then absent, as for an untagged object)."""
        obj = await self._object(bucket, key, version_id)
        if obj is None or obj.delete_marker or not obj.meta.tags:
            return facts
        context = dict(facts.context)
        for k, v in obj.meta.tags.items():
            context[cond.EXISTING_TAG + k] = v
        return dataclasses.replace(facts, context=context)

    async def _object(self, bucket: str, key: str, version_id: str | None) -> ObjectVersion | None:
        ident = (bucket, key, version_id)
        if ident not in self._objects:
            try:
                self._objects[ident] = await self.engine.store.get_object(bucket, key, version_id)
            except errors.S3Error:
                self._objects[ident] = None
        return self._objects[ident]

    async def may_bypass_governance(self, bucket: str, key: str) -> bool:
        """Whether this caller's x-amz-bypass-governance-retention is honoured for ``key``: the bucket
        owner, or a policy Allow of s3:BypassGovernanceRetention on the object."""
        b = await self.bucket(bucket)
        facts = self._facts(ACTIONS["DeleteObject"], bucket, key, None)
        if b is None or facts is None:
            return False
        return may_bypass_governance(dataclasses.replace(facts, action=BYPASS_GOVERNANCE), b)

    async def bucket(self, name: str) -> BucketAccess | None:
        if name in self._buckets:
            return self._buckets[name]
        store = self.engine.store
        op = self.req.operation
        if op in EXPIRATION_OPS:  # WRITE_OPS are among them
            names = _WRITE_DOCS if op in WRITE_OPS else _POLICY_AND_LIFECYCLE
            rec, docs = await store.get_bucket_with_configs(name, names)
            text = docs[0]
            if rec is not None:
                self._lifecycle[name] = docs[1]
                if op in WRITE_OPS:
                    self._write_docs[name] = {
                        n: v for n, v in zip(PUT_CONFIGS, docs[2:], strict=True) if v is not None
                    }
        else:
            rec, text = await store.get_bucket_with_config(name, POLICY)
        found: BucketAccess | None = None
        if rec is not None:
            self._records[name] = rec
            policy = load(text, name) if text else None
            if not self.requester.anonymous and self.requester.canonical_id == rec.owner_id:
                found = (
                    BucketAccess(rec.owner_id, policy) if policy is not None else _owner_only(rec.owner_id)
                )
            else:
                found = BucketAccess(
                    rec.owner_id,
                    policy,
                    acls.loads(await store.get_bucket_config(name, ACL)),
                    await self.public_access_block(name),
                )
        self._buckets[name] = found
        return found

    def known_bucket(self, name: str) -> Bucket | None:
        """The bucket record this request's authorization already read (None if it read none):
        the handler passes it to the engine instead of reading the bucket a second time."""
        return self._records.get(name)

    def known_lifecycle(self, name: str) -> tuple[bool, str | None]:
        """(read, document): the bucket's lifecycle document if this request's authorization read
        it with the bucket (``EXPIRATION_OPS``), so x-amz-expiration needs no query of its own."""
        if name in self._lifecycle:
            return True, self._lifecycle[name]
        return False, None

    def known_write_docs(self, name: str) -> dict[str, str] | None:
        """The bucket's ``PUT_CONFIGS`` documents (name -> text, absent ones left out) if this
        request's authorization read them with the bucket (``WRITE_OPS``), else None."""
        return self._write_docs.get(name)

    async def public_access_block(self, bucket: str) -> acls.PublicAccessBlock:
        return acls.PublicAccessBlock.loads(
            await self.engine.store.get_bucket_config(bucket, PUBLIC_ACCESS_BLOCK)
        )

    def _facts(self, action: Action, bucket: str, key: str | None, version_id: str | None) -> Facts | None:
        if action.kind == "object" and key is None:
            return None
        resource = S3_ARN + bucket + (f"/{key}" if action.kind == "object" else "")
        return Facts(self.requester, action_name(action, version_id), resource, self._context(version_id))

    def _context(self, version_id: str | None) -> dict[str, cond.ContextValue]:
        """The request's condition keys (rs3gw.access.conditions); a key the request does not
        carry stays absent, which the IfExists / Null operators test."""
        req, who = self.req, self.requester
        h, q = req.headers, req.query
        context: dict[str, cond.ContextValue] = {
            cond.SECURE_TRANSPORT: "true" if req.scheme == "https" else "false"
        }
        if req.client_ip:
            context[cond.SOURCE_IP] = req.client_ip
        now = time.time()
        context[cond.EPOCH_TIME] = str(int(now))
        context[cond.CURRENT_TIME] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        if not who.anonymous:
            context[cond.USERNAME] = who.name
            context[cond.USERID] = who.canonical_id
        for header, key in (("referer", cond.REFERER), ("user-agent", cond.USER_AGENT)):
            if header in h:
                context[key] = h[header]
        for header in cond.HEADER_KEYS:
            if header in h:
                context["s3:" + header] = h[header]
        if "x-amz-copy-source" in h:  # "bucket/key" as policies name it: decoded, no leading slash
            context["s3:x-amz-copy-source"] = unquote(h["x-amz-copy-source"]).lstrip("/")
        if version_id is not None:
            context[cond.VERSION_ID] = version_id
        if req.operation in _PREFIX_OPS:
            for param, key in _LIST_PARAMS:
                if param in q:
                    context[key] = q[param]
        if req.operation in _REQUEST_TAG_OPS and "x-amz-tagging" in h:
            try:
                tags = tag_rules.parse_header(h["x-amz-tagging"])
            except errors.S3Error:  # the handler answers the bad header; no keys for the policy
                tags = {}
            self._request_tags(context, tags)
        elif req.operation == BODY_TAG_OP and self.body_tags is not None:
            self._request_tags(context, self.body_tags.tags)
        self._signature_keys(context)
        return context

    @staticmethod
    def _request_tags(context: dict[str, cond.ContextValue], tags: Mapping[str, str]) -> None:
        """s3:RequestObjectTag/<key> for each tag the request sets, and s3:RequestObjectTagKeys."""
        for k, v in tags.items():
            context[cond.REQUEST_TAG + k] = v
        context[cond.REQUEST_TAG_KEYS] = tuple(tags)

    def _signature_keys(self, context: dict[str, cond.ContextValue]) -> None:
        """s3:signatureversion and s3:authType: how a signed request carried its signature."""
        auth = self.req.headers.get("authorization", "")
        q = self.req.query
        if auth:
            context[cond.AUTH_TYPE] = "REST-HEADER"
            context[cond.SIGNATURE_VERSION] = "AWS" if auth.startswith("AWS ") else "AWS4-HMAC-SHA256"
        elif "X-Amz-Algorithm" in q or "Signature" in q:
            context[cond.AUTH_TYPE] = "REST-QUERY-STRING"
            context[cond.SIGNATURE_VERSION] = "AWS4-HMAC-SHA256" if "X-Amz-Algorithm" in q else "AWS"

    async def _object_grants(
        self, action: Action, facts: Facts, b: BucketAccess, bucket: str, key: str, version_id: str | None
    ) -> bool:
        obj = await self._object(bucket, key, version_id)
        if obj is None or obj.delete_marker:
            # S3 answers a missing key 404 only to callers allowed to list the bucket, else 403.
            lister = ACTIONS["ListObjects"]
            listing = self._facts(lister, bucket, None, None)
            return listing is not None and bucket_verdict("ListObjects", lister, listing, b) is Verdict.ALLOW
        return object_allows(action, facts, b, acls.loads(obj.meta.system.get(acls.SYSTEM_KEY)), obj.owner_id)

    async def _check_declared_acl(self, operation: str) -> None:
        declared = acls.from_headers(self.req.headers)
        if declared is None:
            return
        self.check_grantees(declared)
        if operation != "CreateBucket" and self.req.bucket:
            await self.check_public_acl(self.req.bucket, declared)

    def check_grantees(self, acl: acls.Acl) -> None:
        """A grant to a user id rs3gw does not know is refused, as S3 refuses an invalid id."""
        for g in acl.grants:
            special = g.grantee in (acls.OWNER, acls.BUCKET_OWNER) or g.grantee in acls.GROUPS
            if not special and g.grantee not in self.owners:
                raise errors.InvalidArgument(
                    "Invalid id", ArgumentName="CanonicalUser/ID", ArgumentValue=g.grantee
                )

    async def check_public_acl(self, bucket: str, acl: acls.Acl) -> None:
        """BlockPublicAcls: a request that would set a public ACL is refused with AccessDenied."""
        if acl.public and (await self.public_access_block(bucket)).block_public_acls:
            raise errors.AccessDenied()

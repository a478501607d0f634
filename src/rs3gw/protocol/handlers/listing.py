"""Listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from rs3gw import errors
from rs3gw.meta.store import ListQuery, VersionQuery
from rs3gw.model import ObjectVersion, Owner
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.common import encoding_type, int_query, url_encode_key
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_write import XmlBuilder, escape
from rs3gw.timefmt import iso8601


def owner_of(ctx: Ctx, owner_id: str) -> Owner:
    """The account behind a stored owner id; an account since removed keeps its id, no name."""
    if owner_id == ctx.account.owner.id:
        return ctx.account.owner
    return ctx.owners.get(owner_id) or Owner(owner_id, "")


def _object_entry(x: XmlBuilder, ctx: Ctx, o: ObjectVersion, enc: bool, fetch_owner: bool) -> None:
    # One f-string per entry (a 1000-key page renders 1000 of these); only the key needs escaping:
    # etags, checksum names, sizes and storage classes are validated tokens.
    m = o.meta
    x.raw(
        f"<Key>{escape(url_encode_key(o.key, enc))}</Key><LastModified>{iso8601(o.last_modified)}"
        f'</LastModified><ETag>"{o.etag}"</ETag>'
    )
    if m.checksums or m.checksum_type:
        for alg in m.checksums:
            x.elem("ChecksumAlgorithm", alg)
        x.elem("ChecksumType", m.checksum_type or None)
    x.raw(f"<Size>{o.size}</Size><StorageClass>{m.storage_class}</StorageClass>")
    if fetch_owner:
        owner = owner_of(ctx, o.owner_id)
        x.open("Owner").elem("ID", owner.id).elem("DisplayName", owner.display_name).close()


def _contents(x: XmlBuilder, ctx: Ctx, objects: list[ObjectVersion], enc: bool, fetch_owner: bool) -> None:
    """The <Contents> entries of a page. The common entry (no owner, no checksum) is one f-string
    and one append, the same markup ``_object_entry`` writes between open and close."""
    raw = x.raw
    for o in objects:
        m = o.meta
        if fetch_owner or m.checksums or m.checksum_type:
            x.open("Contents")
            _object_entry(x, ctx, o, enc, fetch_owner)
            x.close()
            continue
        raw(
            f"<Contents><Key>{escape(url_encode_key(o.key, enc))}</Key><LastModified>"
            f'{iso8601(o.last_modified)}</LastModified><ETag>"{o.etag}"</ETag><Size>{o.size}</Size>'
            f"<StorageClass>{m.storage_class}</StorageClass></Contents>"
        )


def _common(x: XmlBuilder, prefixes: list[str], enc: bool) -> None:
    for p in prefixes:
        x.open("CommonPrefixes").elem("Prefix", url_encode_key(p, enc)).close()


def _params(ctx: Ctx) -> tuple[str, str, int, bool]:
    enc = encoding_type(ctx)
    delim = ctx.q("delimiter") or ""
    unordered = ctx.q("allow-unordered") or ""
    if delim and unordered.lower() == "true":
        # Ceph's extension (s3-tests test_bucket_list_unordered): an unordered listing cannot
        # group keys into common prefixes. Ours is always ordered, which satisfies "unordered".
        raise errors.InvalidArgument(
            "allow-unordered cannot be combined with a delimiter",
            ArgumentName="allow-unordered",
            ArgumentValue=unordered,
        )
    return ctx.q("prefix") or "", delim, int_query(ctx, "max-keys", 1000), enc


async def list_objects(ctx: Ctx) -> Response:
    prefix, delim, max_keys, enc = _params(ctx)
    marker = ctx.q("marker") or ""
    q = ListQuery(prefix, delim, marker, min(max_keys, 1000))
    res = await ctx.engine.list_objects(ctx.bucket, q, ctx.known_bucket())
    x = XmlBuilder("ListBucketResult")
    x.elem("Name", ctx.bucket).elem("Prefix", url_encode_key(prefix, enc)).elem(
        "Marker", url_encode_key(marker, enc)
    )
    x.elem("MaxKeys", max_keys).elem("Delimiter", url_encode_key(delim, enc) if delim else None)
    x.elem("IsTruncated", res.is_truncated)
    if res.is_truncated and delim and res.next_marker:
        x.elem("NextMarker", url_encode_key(res.next_marker, enc))
    x.elem("EncodingType", "url" if enc else None)
    _contents(x, ctx, res.objects, enc, fetch_owner=True)
    _common(x, res.common_prefixes, enc)
    return xml_response(x)


_TOKEN_TAG = 8  # bytes of keyed hash appended to the marker


def _tag(marker: bytes) -> bytes:
    return hashlib.blake2b(marker, digest_size=_TOKEN_TAG, person=b"rs3gw-list-v2").digest()


def continuation_token(value: str) -> str:
    """Opaque continuation token: the last key (or prefix) returned, with a check value so that
    tokens we never issued are refused as AWS refuses them, not silently read as a marker."""
    raw = value.encode()
    return base64.urlsafe_b64encode(raw + _tag(raw)).decode()


def parse_continuation_token(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
        marker, tag = raw[:-_TOKEN_TAG], raw[-_TOKEN_TAG:]
        if len(raw) <= _TOKEN_TAG or not hmac.compare_digest(tag, _tag(marker)):
            raise ValueError("bad tag")
        return marker.decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=value,
        ) from None


async def list_objects_v2(ctx: Ctx) -> Response:
    prefix, delim, max_keys, enc = _params(ctx)
    token = ctx.q("continuation-token")
    start_after = ctx.q("start-after") or ""
    # An empty token is "no token" (s3-tests test_bucket_listv2_continuationtoken_empty); it is
    # still echoed back as given.
    after = parse_continuation_token(token) if token else start_after
    q = ListQuery(prefix, delim, after, min(max_keys, 1000))
    res = await ctx.engine.list_objects(ctx.bucket, q, ctx.known_bucket())
    x = XmlBuilder("ListBucketResult")
    x.elem("Name", ctx.bucket).elem("Prefix", url_encode_key(prefix, enc))
    x.elem("MaxKeys", max_keys).elem("Delimiter", url_encode_key(delim, enc) if delim else None)
    x.elem("IsTruncated", res.is_truncated).elem("EncodingType", "url" if enc else None)
    x.elem("KeyCount", len(res.objects) + len(res.common_prefixes))
    x.elem("ContinuationToken", token)
    if res.is_truncated and res.next_marker:
        x.elem("NextContinuationToken", continuation_token(res.next_marker))
    x.elem("StartAfter", url_encode_key(start_after, enc) if ctx.q("start-after") is not None else None)
    fetch_owner = (ctx.q("fetch-owner") or "").lower() == "true"
    _contents(x, ctx, res.objects, enc, fetch_owner)
    _common(x, res.common_prefixes, enc)
    return xml_response(x)


async def list_object_versions(ctx: Ctx) -> Response:
    prefix, delim, max_keys, enc = _params(ctx)
    key_marker = ctx.q("key-marker") or ""
    vid_marker = ctx.q("version-id-marker") or ""
    if vid_marker and not key_marker:
        raise errors.InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=vid_marker,
        )
    q = VersionQuery(prefix, delim, key_marker, vid_marker, min(max_keys, 1000))
    res = await ctx.engine.list_object_versions(ctx.bucket, q)
    x = XmlBuilder("ListVersionsResult")
    x.elem("Name", ctx.bucket).elem("Prefix", url_encode_key(prefix, enc))
    x.elem("KeyMarker", url_encode_key(key_marker, enc)).elem("VersionIdMarker", vid_marker)
    if res.is_truncated:
        x.elem("NextKeyMarker", url_encode_key(res.next_key_marker or "", enc))
        x.elem("NextVersionIdMarker", res.next_version_id_marker)
    x.elem("MaxKeys", max_keys).elem("Delimiter", url_encode_key(delim, enc) if delim else None)
    x.elem("EncodingType", "url" if enc else None).elem("IsTruncated", res.is_truncated)
    for v in res.versions:
        owner = owner_of(ctx, v.owner_id)
        x.open("DeleteMarker" if v.delete_marker else "Version")
        x.elem("Key", url_encode_key(v.key, enc)).elem("VersionId", v.version_id).elem(
            "IsLatest", v.is_latest
        )
        x.elem("LastModified", iso8601(v.last_modified))
        if not v.delete_marker:
            x.elem("ETag", f'"{v.etag}"').elem("Size", v.size).elem("StorageClass", v.meta.storage_class)
        x.open("Owner").elem("ID", owner.id).elem("DisplayName", owner.display_name).close()
        x.close()
    _common(x, res.common_prefixes, enc)
    return xml_response(x)

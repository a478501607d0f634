"""Safe parsing of the small XML request bodies S3 accepts (multipart complete, delete, config).

DTDs are refused before expat sees the document, so no entity can ever be expanded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from rs3gw.engine.cors import CorsRule
from rs3gw.errors import MalformedXML

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

MAX_DELETE_OBJECTS = 1000

_CHECKSUM_ELEMS = {
    "ChecksumCRC32": "CRC32",
    "ChecksumCRC32C": "CRC32C",
    "ChecksumCRC64NVME": "CRC64NVME",
    "ChecksumSHA1": "SHA1",
    "ChecksumSHA256": "SHA256",
}


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One <Part> of CompleteMultipartUpload, as the client listed it."""

    part_number: int
    etag: str
    checksums: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeleteEntry:
    """One <Object> of DeleteObjects."""

    key: str
    version_id: str | None
    etag: str | None = None  # <ETag>: delete only if the object's ETag matches (conditional delete)


def _local(tag: str) -> str:
    """Element name without namespace: clients send the S3 namespace or none at all."""
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def _parse(body: bytes, root_name: str) -> ET.Element:
    """Parse after refusing DTDs; the NUL/UTF-16 check keeps the DTD scan meaningful.

    Expat would accept UTF-16/32 documents, in which "<!DOCTYPE" is not a byte substring, so
    such bodies are refused (S3 clients always send UTF-8).
    """
    if b"\x00" in body or body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise MalformedXML()
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise MalformedXML()
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError) as exc:
        raise MalformedXML() from exc
    if _local(root.tag) != root_name:
        raise MalformedXML()
    return root


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _text(elem: ET.Element, name: str) -> str | None:
    """Text of the first child called name; "" for an empty element, None when absent."""
    c = _child(elem, name)
    if c is None:
        return None
    return c.text or ""


def parse_complete_multipart(body: bytes) -> list[CompletedPart]:
    """Parts in the client's order; ordering and existence are the engine's to judge."""
    root = _parse(body, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for part in _children(root, "Part"):
        number_text = _text(part, "PartNumber")
        etag = _text(part, "ETag")
        if number_text is None or etag is None:
            raise MalformedXML()
        try:
            number = int(number_text.strip())
        except ValueError as exc:
            raise MalformedXML() from exc
        checksums: dict[str, str] = {}
        for c in part:
            alg = _CHECKSUM_ELEMS.get(_local(c.tag))
            if alg is not None and c.text:
                checksums[alg] = c.text.strip()
        parts.append(CompletedPart(number, _strip_etag(etag), checksums))
    if not parts:
        raise MalformedXML()
    return parts


def _strip_etag(etag: str) -> str:
    """Clients send the ETag quoted, unquoted, or HTML-escaped-quoted; compare on the bare value."""
    return etag.strip().strip('"')


def parse_delete_objects(body: bytes) -> tuple[list[DeleteEntry], bool]:
    """(entries, quiet). Keys keep their exact text, whitespace included: it is part of the key."""
    root = _parse(body, "Delete")
    quiet_text = _text(root, "Quiet")
    quiet = False
    if quiet_text is not None:
        q = quiet_text.strip().lower()
        if q not in ("true", "false"):
            raise MalformedXML()
        quiet = q == "true"
    entries: list[DeleteEntry] = []
    for obj in _children(root, "Object"):
        key = _text(obj, "Key")
        if key is None:
            raise MalformedXML()
        version = _text(obj, "VersionId")
        etag = _text(obj, "ETag")
        entries.append(DeleteEntry(key, version.strip() if version else None, etag.strip() if etag else None))
        if len(entries) > MAX_DELETE_OBJECTS:
            raise MalformedXML()
    if not entries:
        raise MalformedXML()
    return entries, quiet


def parse_create_bucket(body: bytes) -> str | None:
    """LocationConstraint of CreateBucket; an empty body or element means the default region."""
    if not body.strip():
        return None
    root = _parse(body, "CreateBucketConfiguration")
    loc = _text(root, "LocationConstraint")
    if loc is None:
        return None
    return loc.strip() or None


def parse_versioning(body: bytes) -> tuple[str | None, str | None]:
    """(Status, MfaDelete); either may be absent, but present values must be the allowed words."""
    root = _parse(body, "VersioningConfiguration")
    status = _text(root, "Status")
    mfa = _text(root, "MfaDelete")
    if status is not None:
        status = status.strip()
        if status not in ("Enabled", "Suspended"):
            raise MalformedXML()
    if mfa is not None:
        mfa = mfa.strip()
        if mfa not in ("Enabled", "Disabled"):
            raise MalformedXML()
    return status, mfa


def parse_tagging(body: bytes) -> list[tuple[str, str]]:
    """TagSet as (key, value) pairs in document order; limits and duplicates are checked by callers."""
    root = _parse(body, "Tagging")
    tag_set = _child(root, "TagSet")
    if tag_set is None:
        raise MalformedXML()
    tags: list[tuple[str, str]] = []
    for tag in _children(tag_set, "Tag"):
        key = _text(tag, "Key")
        value = _text(tag, "Value")
        if key is None or value is None:
            raise MalformedXML()
        tags.append((key, value))
    return tags


def parse_cors(body: bytes) -> list[CorsRule]:
    """CORSConfiguration rules in document order; value rules are checked by engine.cors.validate."""
    root = _parse(body, "CORSConfiguration")
    rules: list[CorsRule] = []
    for rule in _children(root, "CORSRule"):
        max_age = _text(rule, "MaxAgeSeconds")
        try:
            age = int(max_age.strip()) if max_age is not None else None
        except ValueError as exc:
            raise MalformedXML() from exc
        rule_id = _text(rule, "ID")
        rules.append(
            CorsRule(
                allowed_methods=_texts(rule, "AllowedMethod"),
                allowed_origins=_texts(rule, "AllowedOrigin"),
                allowed_headers=_texts(rule, "AllowedHeader"),
                expose_headers=_texts(rule, "ExposeHeader"),
                max_age_seconds=age,
                id=rule_id,
            )
        )
    return rules


def _texts(elem: ET.Element, name: str) -> tuple[str, ...]:
    return tuple((c.text or "").strip() for c in _children(elem, name))


@dataclass(frozen=True, slots=True)
class LockConfigDoc:
    """An ObjectLockConfiguration body's fields as sent; engine.object_lock validates the values."""

    enabled: str | None
    rule: bool  # a <Rule> was present (it must then hold a DefaultRetention)
    mode: str | None
    days: str | None
    years: str | None


def parse_object_lock_configuration(body: bytes) -> LockConfigDoc:
    root = _parse(body, "ObjectLockConfiguration")
    enabled = _text(root, "ObjectLockEnabled")
    rule = _child(root, "Rule")
    if rule is None:
        return LockConfigDoc(enabled.strip() if enabled else enabled, False, None, None, None)
    dr = _child(rule, "DefaultRetention")
    if dr is None:
        raise MalformedXML()
    mode = _text(dr, "Mode")
    return LockConfigDoc(
        enabled.strip() if enabled else enabled,
        True,
        mode.strip() if mode is not None else None,
        _text(dr, "Days"),
        _text(dr, "Years"),
    )


def parse_retention(body: bytes) -> tuple[str | None, str | None]:
    """(Mode, RetainUntilDate) of a Retention body; both absent asks to remove the retention."""
    root = _parse(body, "Retention")
    mode, until = _text(root, "Mode"), _text(root, "RetainUntilDate")
    return (mode.strip() if mode is not None else None), (until.strip() if until is not None else None)


def parse_legal_hold(body: bytes) -> str | None:
    status = _text(_parse(body, "LegalHold"), "Status")
    return status.strip() if status is not None else None


def parse_bucket_encryption(body: bytes) -> list[tuple[str | None, str | None, str | None]]:
    """(SSEAlgorithm, KMSMasterKeyID, BucketKeyEnabled) of each Rule; judged by the handler."""
    root = _parse(body, "ServerSideEncryptionConfiguration")
    out = []
    for rule in _children(root, "Rule"):
        apply = _child(rule, "ApplyServerSideEncryptionByDefault")
        alg = _text(apply, "SSEAlgorithm") if apply is not None else None
        kms = _text(apply, "KMSMasterKeyID") if apply is not None else None
        out.append((alg and alg.strip(), kms and kms.strip(), _text(rule, "BucketKeyEnabled")))
    return out

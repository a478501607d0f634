"""LifecycleConfiguration XML: parsed into engine.lifecycle_rules records, and rendered back for GET.

The parser rejects what S3's schema rejects with MalformedXML (a Filter with two predicates, an
Expiration with both Days and Date, a missing StorageClass, ...); value checks (InvalidArgument,
InvalidRequest) are ``lifecycle_rules.validate``'s.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from rs3gw.engine.lifecycle_rules import (
    TRANSITION_CLASSES,
    Expiration,
    LifecycleConfig,
    LifecycleFilter,
    LifecycleRule,
    NoncurrentExpiration,
    NoncurrentTransition,
    Transition,
)
from rs3gw.errors import MalformedXML
from rs3gw.protocol.xml_parse import _child, _children, _local, _parse, _text
from rs3gw.protocol.xml_write import XmlBuilder

_INT = re.compile(r"-?[0-9]{1,20}")
_MAX_INT = 2**31 - 1  # S3's Days fields are 32-bit; larger values fail its schema
_MAX_SIZE = 2**63 - 1
_DATE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _int(text: str | None, limit: int = _MAX_INT) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not _INT.fullmatch(text) or abs(int(text)) > limit:
        raise MalformedXML()
    return int(text)


def _required_int(elem: ET.Element, name: str) -> int:
    value = _int(_text(elem, name))
    if value is None:
        raise MalformedXML()
    return value


def _date(text: str | None) -> float | None:
    """ISO 8601 (``2030-01-01T00:00:00.000Z`` as boto3 sends it, or a bare date), as epoch seconds.

    Only the extended calendar form: ``fromisoformat`` alone would also take the basic form
    (``20200101``) and week dates, which S3's timestamp type refuses (s3-tests'
    test_lifecycle_set_invalid_date expects a 400 for ``20200101``)."""
    if text is None:
        return None
    if not _DATE.fullmatch(text.strip()):
        raise MalformedXML()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MalformedXML() from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise MalformedXML()
    return word == "true"


def _storage_class(elem: ET.Element) -> str:
    sc = (_text(elem, "StorageClass") or "").strip()
    if sc not in TRANSITION_CLASSES:
        raise MalformedXML()
    return sc


def _tag(elem: ET.Element) -> tuple[str, str]:
    key, value = _text(elem, "Key"), _text(elem, "Value")
    if key is None or value is None:
        raise MalformedXML()
    return key, value


def _filter(elem: ET.Element) -> LifecycleFilter:
    kids = list(elem)
    if not kids:
        return LifecycleFilter(form="empty")
    if len(kids) > 1:  # exactly one predicate; several are combined with <And>
        raise MalformedXML()
    kid = kids[0]
    name = _local(kid.tag)
    if name == "Prefix":
        return LifecycleFilter(prefix=kid.text or "", form="prefix")
    if name == "Tag":
        return LifecycleFilter(tags=(_tag(kid),), form="tag")
    if name == "ObjectSizeGreaterThan":
        return LifecycleFilter(size_gt=_int(kid.text or "", _MAX_SIZE), form="gt")
    if name == "ObjectSizeLessThan":
        return LifecycleFilter(size_lt=_int(kid.text or "", _MAX_SIZE), form="lt")
    if name != "And":
        raise MalformedXML()
    prefix = _text(kid, "Prefix")
    tags = tuple(_tag(t) for t in _children(kid, "Tag"))
    gt = _int(_text(kid, "ObjectSizeGreaterThan"), _MAX_SIZE)
    lt = _int(_text(kid, "ObjectSizeLessThan"), _MAX_SIZE)
    if (prefix is not None) + len(tags) + (gt is not None) + (lt is not None) < 2:
        raise MalformedXML()  # <And> combines at least two predicates
    return LifecycleFilter(prefix or "", tags, gt, lt, form="and")


def _rule_filter(rule: ET.Element) -> LifecycleFilter:
    """A rule has either the legacy rule-level <Prefix> or a <Filter>, never both, never neither."""
    prefix, filt = _text(rule, "Prefix"), _child(rule, "Filter")
    if (prefix is None) == (filt is None):
        raise MalformedXML()
    if filt is None:
        return LifecycleFilter(prefix=prefix or "", form="legacy")
    return _filter(filt)


def _one(rule: ET.Element, name: str) -> ET.Element | None:
    found = _children(rule, name)
    if len(found) > 1:
        raise MalformedXML()
    return found[0] if found else None


def _expiration(elem: ET.Element | None) -> Expiration | None:
    if elem is None:
        return None
    exp = Expiration(
        days=_int(_text(elem, "Days")),
        date=_date(_text(elem, "Date")),
        expired_object_delete_marker=_bool(_text(elem, "ExpiredObjectDeleteMarker")),
    )
    given = (exp.days is not None) + (exp.date is not None) + (exp.expired_object_delete_marker is not None)
    if given != 1:  # Days, Date and ExpiredObjectDeleteMarker exclude each other
        raise MalformedXML()
    return exp


def _transition(elem: ET.Element) -> Transition:
    t = Transition(_storage_class(elem), _int(_text(elem, "Days")), _date(_text(elem, "Date")))
    if (t.days is None) == (t.date is None):
        raise MalformedXML()
    return t


def _rule(elem: ET.Element) -> LifecycleRule:
    status = (_text(elem, "Status") or "").strip()
    if status not in ("Enabled", "Disabled"):
        raise MalformedXML()
    nce = _one(elem, "NoncurrentVersionExpiration")
    abort = _one(elem, "AbortIncompleteMultipartUpload")
    return LifecycleRule(
        status=status,
        filter=_rule_filter(elem),
        id=_text(elem, "ID") or "",
        expiration=_expiration(_one(elem, "Expiration")),
        transitions=tuple(_transition(t) for t in _children(elem, "Transition")),
        noncurrent_expiration=None
        if nce is None
        else NoncurrentExpiration(
            _required_int(nce, "NoncurrentDays"), _int(_text(nce, "NewerNoncurrentVersions"))
        ),
        noncurrent_transitions=tuple(
            NoncurrentTransition(
                _storage_class(t),
                _required_int(t, "NoncurrentDays"),
                _int(_text(t, "NewerNoncurrentVersions")),
            )
            for t in _children(elem, "NoncurrentVersionTransition")
        ),
        abort_days=None if abort is None else _required_int(abort, "DaysAfterInitiation"),
    )


def parse_lifecycle(body: bytes, min_size_mode: str) -> LifecycleConfig:
    root = _parse(body, "LifecycleConfiguration")
    return LifecycleConfig(tuple(_rule(r) for r in _children(root, "Rule")), min_size_mode)


# -- rendering ----------------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _write_filter(x: XmlBuilder, f: LifecycleFilter) -> None:
    if f.form == "legacy":
        x.elem("Prefix", f.prefix)
        return
    x.open("Filter")
    if f.form == "and":
        x.open("And")
        x.elem("Prefix", f.prefix or None)
    if f.form == "prefix":
        x.elem("Prefix", f.prefix)
    for k, v in f.tags:
        x.open("Tag").elem("Key", k).elem("Value", v).close()
    x.elem("ObjectSizeGreaterThan", f.size_gt).elem("ObjectSizeLessThan", f.size_lt)
    if f.form == "and":
        x.close()
    x.close()


def _write_rule(x: XmlBuilder, r: LifecycleRule) -> None:
    x.open("Rule").elem("ID", r.id)
    _write_filter(x, r.filter)
    x.elem("Status", r.status)
    if (e := r.expiration) is not None:
        x.open("Expiration").elem("Days", e.days).elem("Date", None if e.date is None else _iso(e.date))
        x.elem("ExpiredObjectDeleteMarker", e.expired_object_delete_marker).close()
    for t in r.transitions:
        x.open("Transition").elem("Days", t.days).elem("Date", None if t.date is None else _iso(t.date))
        x.elem("StorageClass", t.storage_class).close()
    for nt in r.noncurrent_transitions:
        x.open("NoncurrentVersionTransition").elem("NoncurrentDays", nt.noncurrent_days)
        x.elem("StorageClass", nt.storage_class)
        x.elem("NewerNoncurrentVersions", nt.newer_noncurrent_versions).close()
    if (n := r.noncurrent_expiration) is not None:
        x.open("NoncurrentVersionExpiration").elem("NoncurrentDays", n.noncurrent_days)
        x.elem("NewerNoncurrentVersions", n.newer_noncurrent_versions).close()
    if r.abort_days is not None:
        x.open("AbortIncompleteMultipartUpload").elem("DaysAfterInitiation", r.abort_days).close()
    x.close()


def lifecycle_xml(config: LifecycleConfig) -> XmlBuilder:
    x = XmlBuilder("LifecycleConfiguration")
    for r in config.rules:
        _write_rule(x, r)
    return x

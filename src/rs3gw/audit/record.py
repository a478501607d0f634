"""Encoding records into chain lines cheaply, byte-identical to the reference definition.

The reference (chain.py's docstring, ``verify``): a line is ``json.dumps(record, sort_keys=True,
separators=(",", ":"), ensure_ascii=True)`` with ``mac`` = HMAC over ``prev || "\\n" ||`` the same
encoding of the record without ``mac``. Building a dict per request and running the generic encoder
over it (twice, or once in halves) was most of the audit log's CPU per request, so a record is kept
here as its encoded members in four runs, split where the chain's own fields ``mac``, ``prev`` and
``seq`` sort in. Sealing is then string concatenation and one HMAC, whatever the record.

A request record is encoded straight from the request event with a fixed template (its keys are
always the same); anything unusual about its values (a non-finite float, an int subclass, ...)
sends it through the dict path instead, so the bytes never differ from the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any, NamedTuple, Protocol, cast

_ESC = json.encoder.encode_basestring_ascii  # the C escaper json.dumps(ensure_ascii=True) uses
# One encoder, built once: json.dumps with these options would build a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class RequestLike(Protocol):
    """The fields of protocol.observe.RequestEvent the log keeps (structural, so no upward import)."""

    @property
    def request_id(self) -> str: ...
    @property
    def started(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def method(self) -> str: ...
    @property
    def operation(self) -> str: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def principal(self) -> str: ...
    @property
    def access_key(self) -> str: ...
    @property
    def client_ip(self) -> str: ...
    @property
    def secure(self) -> bool: ...
    @property
    def status(self) -> int: ...
    @property
    def error_code(self) -> str: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...


class Members(NamedTuple):
    """A record's encoded ``"key":value`` members, comma-joined, in sorted key order, cut into the
    runs that sort before ``mac``, between ``mac`` and ``prev``, between ``prev`` and ``seq``, and
    after ``seq`` (each may be empty). The chain fields themselves are never in them."""

    before_mac: str
    mac_prev: str
    prev_seq: str
    after_seq: str


def _value(v: Any) -> str:
    """One JSON value exactly as the reference encoder writes it."""
    t = type(v)
    if t is str:
        return _ESC(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if t is int or (t is float and math.isfinite(v)):
        return repr(v)  # what json uses: int.__repr__ / float.__repr__
    return _CANONICAL.encode(v)  # nested, subclasses, NaN: the encoder itself


def dict_members(record: dict[str, Any]) -> Members:
    """Members of a dict record; its own ``mac``/``prev``/``seq`` (if any) are left out: sealing sets them.

    TypeError for keys that are not all strings (json would coerce them, and mixed types do not
    sort together): the caller falls back to the reference encoder for those."""
    runs: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    for k in sorted(record):
        if type(k) is not str:
            raise TypeError("audit record keys must be strings")
        if k == "mac" or k == "prev" or k == "seq":
            continue
        run = 0 if k < "mac" else 1 if k < "prev" else 2 if k < "seq" else 3
        runs[run].append(f"{_ESC(k)}:{_value(record[k])}")
    return Members(",".join(runs[0]), ",".join(runs[1]), ",".join(runs[2]), ",".join(runs[3]))


def request_record(event: RequestLike, pid: int, iso: str) -> dict[str, Any]:
    """The request record as a dict (the fallback path, and the reference the template must match)."""
    ts = event.started
    return {
        "type": "request",
        "time": iso,
        "ts": round(ts, 6),
        "request_id": event.request_id,
        "principal": event.principal,
        "access_key": event.access_key,
        "action": event.operation or "Unknown",
        "bucket": event.bucket,
        "key": event.key,
        "status": event.status,
        "error": event.error_code,
        "source_ip": event.client_ip,
        "pid": pid,
        "method": event.method,
        "secure": event.secure,
        "bytes_in": event.bytes_in,
        "bytes_out": event.bytes_out,
        "duration_ms": round(event.duration * 1000, 3),
    }


def request_members(event: RequestLike, pid: int, iso: str) -> Members:
    """A request record's members from its event, without building the dict (``request_record``'s
    fields in sorted order; tests/unit/test_audit_record_encode.py checks it against the reference)."""
    e = event
    ts = round(e.started, 6)
    dur = round(e.duration * 1000, 3)
    bucket, key, secure = e.bucket, e.key, e.secure
    if not (
        type(ts) is float
        and type(dur) is float
        and math.isfinite(ts)
        and math.isfinite(dur)
        and type(e.status) is int
        and type(e.bytes_in) is int
        and type(e.bytes_out) is int
        and type(pid) is int
        and type(secure) is bool
    ):
        return dict_members(request_record(e, pid, iso))
    # _ESC raises TypeError on a non-str (str subclasses encode as their text, as json does).
    return Members(
        f'"access_key":{_ESC(e.access_key)},"action":{_ESC(e.operation or "Unknown")},'
        f'"bucket":{"null" if bucket is None else _ESC(bucket)},'
        f'"bytes_in":{e.bytes_in!r},"bytes_out":{e.bytes_out!r},"duration_ms":{dur!r},'
        f'"error":{_ESC(e.error_code)},"key":{"null" if key is None else _ESC(key)}',
        f'"method":{_ESC(e.method)},"pid":{pid!r}',
        f'"principal":{_ESC(e.principal)},"request_id":{_ESC(e.request_id)},'
        f'"secure":{"true" if secure else "false"}',
        f'"source_ip":{_ESC(e.client_ip)},"status":{e.status!r},"time":{_ESC(iso)},"ts":{ts!r},"type":"request"',
    )


class _Mac(Protocol):
    def copy(self) -> _Mac: ...
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


try:  # OpenSSL's HMAC object itself: copying it is one C call, hmac.HMAC.copy several Python ones
    from _hashlib import hmac_new as _openssl_hmac

    def _new_mac(key: bytes) -> _Mac:
        return cast(_Mac, _openssl_hmac(key, digestmod="sha256"))

except ImportError:  # pragma: no cover - Python built without OpenSSL

    def _new_mac(key: bytes) -> _Mac:
        return hmac.new(key, digestmod=hashlib.sha256)


_KEYED: dict[bytes, _Mac] = {}


def _keyed(key: bytes) -> _Mac:
    """An HMAC-SHA256 already keyed with ``key``: copying it skips hashing the key pads per record."""
    h = _KEYED.get(key)
    if h is None:
        if len(_KEYED) > 16:
            _KEYED.clear()
        h = _KEYED[key] = _new_mac(key)
    return h


def seal_members(key: bytes, m: Members, seq: int, prev: str) -> tuple[str, str]:
    """(line without its newline, mac) of the record with members ``m`` at ``seq`` after ``prev``."""
    b, mp, ps, a = m
    if mp and ps and a:  # every request record: no empty runs to skip
        rest = f'{mp},"prev":{_ESC(prev)},{ps},"seq":{seq!r},{a}'
    else:
        rest = ",".join([p for p in (mp, f'"prev":{_ESC(prev)}', ps, f'"seq":{seq!r}', a) if p])
    h = _keyed(key).copy()
    if b:
        h.update(f"{prev}\n{{{b},{rest}}}".encode())
        mac = h.hexdigest()
        return f'{{{b},"mac":"{mac}",{rest}}}', mac
    h.update(f"{prev}\n{{{rest}}}".encode())
    mac = h.hexdigest()
    return f'{{"mac":"{mac}",{rest}}}', mac

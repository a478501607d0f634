"""chain.seal encodes a record once and splices "mac" in; it must stay byte-identical to the
reference definition (json.dumps with sorted keys, MAC over the record without "mac")."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from rs3gw.audit.chain import GENESIS, compute_mac, seal


def _reference(key: bytes, record: dict[str, Any], seq: int, prev: str) -> bytes:
    record["seq"] = seq
    record["prev"] = prev
    body = {k: v for k, v in record.items() if k != "mac"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    record["mac"] = hmac.new(key, prev.encode() + b"\n" + canonical, hashlib.sha256).hexdigest()
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


RECORDS: list[dict[str, Any]] = [
    {},
    {"a": 1},
    {"zz": "late", "zzz": None},  # only keys after "mac" (besides seq/prev)
    {"ma": 1, "mab": 2, "mac0": 3, "mad": True},  # keys right around "mac"
    {"mac": "stale", "x": 1},  # a record re-sealed: the old mac never enters the canonical form
    {
        "type": "request",
        "time": "2026-12-02T14:00:00.000Z",
        "ts": 1796220000.123456,
        "request_id": "ABCDEF0123456789",
        "principal": "admin",
        "access_key": "AKAKAK",
        "action": "HeadObject",
        "bucket": "bench",
        "key": 'clé/ünïcode "quoted" \\ back\nline',
        "status": 200,
        "error": "",
        "source_ip": "127.0.0.1",
        "pid": 4242,
        "secure": False,
        "bytes_in": 0,
        "bytes_out": 4096,
        "duration_ms": 1.234,
        "nested": {"z": [1, 2, {"b": 1, "a": 2}], "a": "x"},
    },
]


@pytest.mark.parametrize("index", range(len(RECORDS)))
@pytest.mark.parametrize("prev", [GENESIS, "f" * 64, "prév"])
def test_seal_matches_reference(index: int, prev: str) -> None:
    key = os.urandom(32)
    fast, ref = dict(RECORDS[index]), dict(RECORDS[index])
    line = seal(key, fast, 7, prev)
    assert line == _reference(key, ref, 7, prev)
    assert fast == ref
    assert list(fast) == list(ref)  # sinks get the dict: same key order too
    assert fast["mac"] == compute_mac(key, prev, fast)
    assert json.loads(line) == fast


def test_seal_non_string_keys_fall_back() -> None:
    key = os.urandom(32)
    fast: dict[Any, Any] = {1: "a", 2: "b"}
    ref: dict[Any, Any] = {1: "a", 2: "b"}
    with pytest.raises(TypeError):  # int and str keys do not sort together: same as before
        _reference(key, ref, 1, GENESIS)
    with pytest.raises(TypeError):
        seal(key, fast, 1, GENESIS)

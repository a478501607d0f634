"""The request path's shortcuts must give exactly what the plain code gave.

``sigv4.signature`` reuses hashed HMAC pads per key and ``fold_headers`` folds in one pass
when no header repeats; both are checked against the straightforward definitions.
"""

from __future__ import annotations

import hmac
import os

import pytest

from rs3gw.auth import sigv4
from rs3gw.protocol.request import fold_headers


@pytest.mark.parametrize("key_len", [0, 1, 31, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("msg", ["", "AWS4-HMAC-SHA256\n20130524T000000Z", "é" * 7, "x" * 5000])
def test_signature_is_hmac_sha256(key_len: int, msg: str) -> None:
    key = os.urandom(key_len)
    want = hmac.digest(key, msg.encode("utf-8"), "sha256").hex()
    assert sigv4.signature(key, msg) == want
    assert sigv4.signature(key, msg) == want  # second use: from the cached pads, unchanged by the first


def test_signature_keys_do_not_mix() -> None:
    a, b = os.urandom(32), os.urandom(32)
    assert sigv4.signature(a, "m") != sigv4.signature(b, "m")
    assert sigv4.signature(a, "m") == hmac.digest(a, b"m", "sha256").hex()


def _fold_reference(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in raw:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"Host", b"h"), (b"X-Amz-Date", b"20130524T000000Z")],
        [(b"x-amz-meta-a", b"1"), (b"X-Amz-Meta-A", b"2"), (b"host", b"h"), (b"x-amz-meta-a", b"3")],
        [(b"x-amz-meta-b", b"\xe9t\xe9")],
    ],
)
def test_fold_headers_matches_reference(raw: list[tuple[bytes, bytes]]) -> None:
    got = fold_headers(raw)
    assert got == _fold_reference(raw)
    assert list(got) == list(_fold_reference(raw))  # same order (canonical forms iterate it)


def test_primed_response_keeps_every_other_field() -> None:
    """``_with`` stands in for ``dataclasses.replace``: a field it forgot would be silently reset."""
    import dataclasses

    from rs3gw.protocol.response import Response, _with

    resp = Response(206, {"etag": '"x"'}, b"old", None, 7, None)
    values = {f.name: getattr(resp, f.name) for f in dataclasses.fields(Response)}
    assert _with(resp, b"new", None) == dataclasses.replace(resp, body=b"new", stream=None)
    assert set(values) == {"status", "headers", "body", "stream", "length", "file"}

"""Large objects stream through the server in bounded memory (peak RSS read from /proc after the run).

Neither side holds the body: the test generates it block by block and hashes what comes back.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server

MIB = 1 << 20
RSS_LIMIT_MIB = 300

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")


class _UnsignedPayload(S3SigV4Auth):
    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


def _headers(server: Server, method: str, path: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    req = AWSRequest(method=method, url=server.endpoint + path, headers=extra or {})
    _UnsignedPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def _blocks(total: int, digest: Any) -> Iterator[bytes]:
    """Distinct 1 MiB blocks (a counter stamped into a fixed random block), hashed as they are sent."""
    base = bytearray(hashlib.sha256(b"seed").digest() * (MIB // 32))
    sent = 0
    n = 0
    while sent < total:
        base[:8] = n.to_bytes(8, "big")
        block = bytes(base[: min(MIB, total - sent)])
        digest.update(block)
        sent += len(block)
        n += 1
        yield block


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _roundtrip(server: Server, bucket: str, size: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        conn.request(
            "PUT", f"/{bucket}", headers=_headers(server, "PUT", f"/{bucket}", {"Content-Length": "0"})
        )
        assert conn.getresponse().read() is not None
        sent = hashlib.md5(usedforsecurity=False)
        path = f"/{bucket}/big"
        headers = _headers(server, "PUT", path, {"Content-Length": str(size)})
        conn.request("PUT", path, body=_blocks(size, sent), headers=headers, encode_chunked=False)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        assert resp.getheader("etag") == f'"{sent.hexdigest()}"'

        conn.request("GET", path, headers=_headers(server, "GET", path))
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("content-length") == str(size)
        got = hashlib.md5(usedforsecurity=False)
        n = 0
        while chunk := resp.read(MIB):
            got.update(chunk)
            n += len(chunk)
        assert n == size and got.hexdigest() == sent.hexdigest()
    finally:
        conn.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """Its own process, so VmHWM measures only this test's traffic."""
    srv = start_server(tmp_path / "data", "--no-fsync")
    yield srv
    srv.stop()


def test_512_mib_put_get_bounded_memory(fresh_server: Server) -> None:
    _roundtrip(fresh_server, "bigbucket", 512 * MIB)
    peak = vm_hwm_mib(fresh_server.proc.pid)
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.0f} MiB"
    _abandoned_get_stops_reading(fresh_server, "/bigbucket/big", 512 * MIB)


def read_bytes(pid: int) -> int:
    """Bytes the process has read through read()/pread() (rchar), page cache included."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def _abandoned_get_stops_reading(server: Server, path: str, size: int) -> None:
    """A client that hangs up after 1 MiB must not make the server read the remaining object."""
    pid = server.proc.pid
    before = read_bytes(pid)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("GET", path, headers=_headers(server, "GET", path))
    resp = conn.getresponse()
    assert resp.status == 200 and len(resp.read(MIB)) == MIB
    conn.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    conn.close()
    time.sleep(1.0)
    wasted = read_bytes(pid) - before
    assert wasted < size // 4, f"server read {wasted / MIB:.0f} MiB for a client that left after 1 MiB"
    # And it still serves.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_multipart_stream_upload_bounded_memory(fresh_server: Server) -> None:
    """A non-seekable stream through boto3's transfer manager: 8 MiB multipart parts, signed."""
    s3 = fresh_server.client()
    s3.create_bucket(Bucket="chunked")

    class Stream:
        def __init__(self, size: int) -> None:
            self.it = _blocks(size, hashlib.md5(usedforsecurity=False))
            self.buf = b""

        def read(self, n: int = -1) -> bytes:
            while (n < 0 or len(self.buf) < n) and (block := next(self.it, b"")):
                self.buf += block
            out, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
            return out

    s3.upload_fileobj(Stream(64 * MIB), "chunked", "obj")
    assert s3.head_object(Bucket="chunked", Key="obj")["ContentLength"] == 64 * MIB
    peak = vm_hwm_mib(fresh_server.proc.pid)
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.0f} MiB"


@pytest.mark.slow
def test_2_gib_put_get_bounded_memory(fresh_server: Server) -> None:
    _roundtrip(fresh_server, "hugebucket", 2048 * MIB)
    peak = vm_hwm_mib(fresh_server.proc.pid)
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.0f} MiB"

"""Interrupted uploads: SIGTERM mid-upload, SIGKILL mid-upload, and clients that vanish mid-body.

Whatever happens, an object is either complete or absent after a restart, temp files do not
accumulate, and the server keeps answering.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server

MIB = 1 << 20


class _UnsignedPayload(S3SigV4Auth):
    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


def _headers(server: Server, method: str, path: str, extra: dict[str, str]) -> dict[str, str]:
    req = AWSRequest(method=method, url=server.endpoint + path, headers=extra)
    _UnsignedPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def _block(i: int) -> bytes:
    return i.to_bytes(8, "big") * (MIB // 8)


def _start_upload(server: Server, path: str, size: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for k, v in _headers(server, "PUT", path, {"Content-Length": str(size)}).items():
        if k.lower() != "host":
            conn.putheader(k, v)
    conn.endheaders()
    return conn


def _tmp_files(server: Server) -> list[Path]:
    return list((server.data_dir / "tmp").iterdir())


def _blob_count(server: Server) -> int:
    return sum(1 for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


def _wait_for(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data")
    srv.client().create_bucket(Bucket="bkt")
    yield srv
    srv.stop()


def _object_state(s3: Any, key: str, expected_md5: str, size: int) -> str:
    """'complete' or 'absent'; anything in between fails the test."""
    try:
        head = s3.head_object(Bucket="bkt", Key=key)
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchKey")
        return "absent"
    assert head["ContentLength"] == size
    assert head["ETag"] == f'"{expected_md5}"'
    body = s3.get_object(Bucket="bkt", Key=key)["Body"].read()
    assert hashlib.md5(body, usedforsecurity=False).hexdigest() == expected_md5
    return "complete"


@pytest.mark.local_backend_only("inspects the local backend's temp files")
def test_sigterm_during_upload_finishes_or_rejects(own_server: Server) -> None:
    size = 48 * MIB
    md5 = hashlib.md5(usedforsecurity=False)
    conn = _start_upload(own_server, "/bkt/inflight", size)
    for i in range(16):
        md5.update(_block(i))
        conn.send(_block(i))
    assert _wait_for(lambda: bool(_tmp_files(own_server))), "upload never reached the blob store"
    own_server.proc.send_signal(signal.SIGTERM)
    status = None
    try:
        for i in range(16, 48):
            md5.update(_block(i))
            conn.send(_block(i))
        resp = conn.getresponse()
        status = resp.status
        resp.read()
    except OSError:
        pass  # the server may drop the connection instead of finishing: also acceptable
    finally:
        conn.close()
    own_server.proc.wait(40)
    assert not own_server.log.read_text().count("Traceback")
    restarted = start_server(own_server.data_dir)
    try:
        state = _object_state(restarted.client(), "inflight", md5.hexdigest(), size)
        # `rs3gw serve` drains in-flight requests on SIGTERM, so this one finishes and is durable.
        assert (status, state) == (200, "complete")
        assert _tmp_files(restarted) == []
    finally:
        restarted.stop()


@pytest.mark.local_backend_only("inspects the local backend's temp files")
def test_sigkill_during_upload_leaves_nothing(own_server: Server) -> None:
    conn = _start_upload(own_server, "/bkt/killed", 32 * MIB)
    for i in range(8):
        conn.send(_block(i))
    assert _wait_for(lambda: bool(_tmp_files(own_server)))
    blobs_before = _blob_count(own_server)
    own_server.proc.kill()
    own_server.proc.wait(10)
    conn.close()
    assert _tmp_files(own_server), "a crash mid-upload should leave its temp file behind"
    restarted = start_server(own_server.data_dir)
    try:
        assert _tmp_files(restarted) == []  # LocalBlobStore.clean_tmp ran at startup
        assert _object_state(restarted.client(), "killed", "", 0) == "absent"
        assert _blob_count(restarted) == blobs_before
    finally:
        restarted.stop()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


@pytest.mark.local_backend_only("inspects the local backend's temp files")
def test_stale_temp_files_are_removed_at_startup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tmp").mkdir(parents=True)
    (data / "tmp" / "0123abcd.tmp").write_bytes(b"left by a crash")
    (data / "tmp" / f"4567abcd.{_dead_pid()}.tmp").write_bytes(b"left by a dead worker")
    # A live process's upload (with --workers N, a sibling worker) must survive a restart.
    live = data / "tmp" / f"89abcdef.{os.getpid()}.tmp"
    live.write_bytes(b"still being written")
    srv = start_server(data)
    try:
        assert _tmp_files(srv) == [live]
    finally:
        srv.stop()


def _early_close(server: Server, path: str, declared: int, sent: bytes) -> None:
    conn = _start_upload(server, path, declared)
    conn.send(sent)
    assert conn.sock is not None
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()


@pytest.mark.local_backend_only("inspects the local backend's temp files")
@pytest.mark.parametrize("declared,sent", [(1000, 10), (8 * MIB, 3 * MIB)])
def test_body_ending_early_leaves_nothing(own_server: Server, declared: int, sent: int) -> None:
    s3 = own_server.client()
    blobs_before = _blob_count(own_server)
    _early_close(own_server, "/bkt/short", declared, b"x" * sent)
    assert _wait_for(lambda: _tmp_files(own_server) == []), _tmp_files(own_server)
    with pytest.raises(ClientError):
        s3.head_object(Bucket="bkt", Key="short")
    assert _blob_count(own_server) == blobs_before
    # Still healthy: new requests work, and the failure was not logged as an internal error.
    s3.put_object(Bucket="bkt", Key="after", Body=b"fine")
    assert s3.get_object(Bucket="bkt", Key="after")["Body"].read() == b"fine"
    assert "Traceback" not in own_server.log.read_text()


@pytest.mark.local_backend_only("inspects the local backend's temp files")
def test_many_aborted_uploads_do_not_leak(own_server: Server) -> None:
    for i in range(20):
        _early_close(own_server, f"/bkt/abort{i}", 4 * MIB, b"y" * (MIB + i))
    assert _wait_for(lambda: _tmp_files(own_server) == [])
    assert own_server.client().list_objects_v2(Bucket="bkt").get("KeyCount") == 0
    assert own_server.proc.poll() is None


def test_tls_server_with_idle_keepalive_client_stops_promptly(tmp_path: Path) -> None:
    """An idle pooled TLS connection (every boto3 app has one) must not hold SIGTERM for the
    whole grace period: uvicorn's TLS close waits for a close_notify the client never sends."""
    from conftest import make_cert

    server = start_server(tmp_path / "data", tls=make_cert(tmp_path))
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="idle-tls")
        s3.put_object(Bucket="idle-tls", Key="k", Body=b"x")  # leaves a keep-alive connection open
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        assert time.monotonic() - started < 5
    finally:
        server.stop()

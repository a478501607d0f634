"""Slow and stalled clients against a real server with short timeouts (``--http-header-timeout``,
``--http-body-timeout``), over raw sockets so the test controls every byte and every pause.

A head that never ends is dropped; a body that stops is answered with AWS's 400 RequestTimeout and
leaves no temp file or part behind; meanwhile other clients are served; a body that is slow but
steady, and an idle keep-alive connection, are left alone.
"""

from __future__ import annotations

import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server

T = 1.5  # both timeouts; the server checks them every T/4
MIB = 1 << 20


class _UnsignedPayload(S3SigV4Auth):
    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("slow") / "data",
        *("--http-header-timeout", str(T), "--http-body-timeout", str(T)),
    )
    srv.client().create_bucket(Bucket="bkt")
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _signed_head(server: Server, method: str, path: str, length: int) -> bytes:
    """The request line and headers of a SigV4-signed (UNSIGNED-PAYLOAD) request with a body."""
    req = AWSRequest(method=method, url=server.endpoint + path, headers={"Content-Length": str(length)})
    _UnsignedPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed (EOF or reset), reading and discarding whatever comes."""
    start = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - start
    return None


def _tmp_files(server: Server) -> list[Path]:
    return list((server.data_dir / "tmp").iterdir())


def _wait_for(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def test_trickled_and_silent_heads_are_dropped(slow_server: Server) -> None:
    silent = _connect(slow_server)  # connects, never sends a byte
    trickle = _connect(slow_server)
    start = time.monotonic()
    trickle.sendall(b"GET /bkt HTTP/1.1\r\nHost: x\r\n")
    trickle.settimeout(0.05)
    closed_after: float | None = None
    while time.monotonic() - start < T + 5:
        try:
            trickle.sendall(b"X-Slow: a\r\n")  # a header line every 0.2 s: steady, but never ends
            data = trickle.recv(65536)
        except TimeoutError:
            time.sleep(0.15)
            continue
        except ConnectionError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 2"), data
        closed_after = time.monotonic() - start
        break
    assert closed_after is not None, "a head trickled for T + 5 s was not cut"
    assert closed_after >= T * 0.9
    silent_after = _closed_within(silent, 5)
    assert silent_after is not None, "a connection that never sent a byte was kept"
    silent.close()
    trickle.close()


@pytest.mark.local_backend_only("counts temp files in the data dir")
@pytest.mark.parametrize("op", ["put", "upload_part"])
def test_stalled_body_is_request_timeout_and_leaves_nothing(slow_server: Server, op: str) -> None:
    s3 = slow_server.client()
    key = f"stall-{op}-{uuid.uuid4().hex[:8]}"
    path, upload_id = f"/bkt/{key}", ""
    if op == "upload_part":
        upload_id = s3.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
        path += f"?partNumber=1&uploadId={upload_id}"
    sock = _connect(slow_server)
    sock.sendall(_signed_head(slow_server, "PUT", path, 8 * MIB) + b"x" * (3 * MIB))
    stalled_at = time.monotonic()
    # The writer spilled to a temp file: the debris a stalled client used to leave open forever.
    assert _wait_for(lambda: _tmp_files(slow_server), 5), "the upload never reached a temp file"
    # Others are served while this one stalls.
    s3.put_object(Bucket="bkt", Key=f"{key}-other", Body=b"meanwhile")
    assert s3.get_object(Bucket="bkt", Key=f"{key}-other")["Body"].read() == b"meanwhile"

    status, headers, body = _read_response(sock)
    waited = time.monotonic() - stalled_at
    assert status == 400, body
    assert ET.fromstring(body).findtext("Code") == "RequestTimeout"
    assert headers.get("connection") == "close"
    assert waited >= T * 0.9, f"cut after {waited:.2f} s, before the {T} s timeout"
    assert _closed_within(sock, 5) is not None, "the connection stayed open after RequestTimeout"
    sock.close()

    assert _wait_for(lambda: not _tmp_files(slow_server)), f"temp files left: {_tmp_files(slow_server)}"
    if op == "put":
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket="bkt", Key=key)
        assert err.value.response["Error"]["Code"] == "404"
    else:
        assert s3.list_parts(Bucket="bkt", Key=key, UploadId=upload_id).get("Parts", []) == []
        s3.abort_multipart_upload(Bucket="bkt", Key=key, UploadId=upload_id)
    s3.delete_object(Bucket="bkt", Key=f"{key}-other")


def test_slow_but_steady_body_is_not_cut(slow_server: Server) -> None:
    payload = b"slowbody"  # one byte every T/3: 8 bytes take 2.7 T
    sock = _connect(slow_server)
    sock.sendall(_signed_head(slow_server, "PUT", "/bkt/steady", len(payload)))
    for i in range(len(payload)):
        time.sleep(T / 3)
        sock.sendall(payload[i : i + 1])
    status, _, body = _read_response(sock)
    assert status == 200, body
    sock.close()
    got = slow_server.client().get_object(Bucket="bkt", Key="steady")["Body"].read()
    assert got == payload


def test_idle_keep_alive_connection_is_still_served(slow_server: Server) -> None:
    """Between requests the connection is idle, not late: uvicorn's keep-alive timeout (5 s) rules
    there, so a pause longer than the header timeout still gets the next request answered."""
    sock = _connect(slow_server)
    sock.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _read_response(sock)[0] == 200
    time.sleep(T + 1)
    sock.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = _read_response(sock)
    assert status == 200
    assert headers.get("connection") != "close"
    sock.close()


def test_timeouts_from_flag_env_and_file(tmp_path: Path) -> None:
    """The [http] table, RS3GW_HTTP_* and the flags reach Settings (flag > env > file), survive the
    trip to worker processes, and a non-positive value is refused naming the key."""
    from rs3gw.config import ConfigError, load_settings, settings_from_json, settings_to_json

    conf = tmp_path / "rs3gw.toml"
    conf.write_text("[http]\nheader_timeout = 7\nbody_timeout = 8.5\n")
    base = {"data_dir": str(tmp_path / "data"), "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    s = load_settings(base, {}, conf)
    assert (s.http_header_timeout, s.http_body_timeout) == (7.0, 8.5)
    s = load_settings({**base, "http_body_timeout": "2"}, {"RS3GW_HTTP_HEADER_TIMEOUT": "1.5"}, conf)
    assert (s.http_header_timeout, s.http_body_timeout) == (1.5, 2.0)
    back = settings_from_json(settings_to_json(s))
    assert (back.http_header_timeout, back.http_body_timeout) == (1.5, 2.0)
    assert load_settings(base, {}, None).http_body_timeout == 60.0
    with pytest.raises(ConfigError, match="http-body-timeout"):
        load_settings({**base, "http_body_timeout": "0"}, {}, None)


def test_worker_processes_take_timeouts_from_parent_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's --workers children build the protocol from the class alone: the timeouts come from
    the settings the parent exported, and the defaults when there are none."""
    import rs3gw.httpserver as httpserver
    from rs3gw.config import SETTINGS_JSON_ENV

    monkeypatch.setattr(httpserver, "_timeouts", None)
    monkeypatch.delenv(SETTINGS_JSON_ENV, raising=False)
    assert httpserver.client_timeouts() == (60.0, 60.0)
    monkeypatch.setattr(httpserver, "_timeouts", None)
    monkeypatch.setenv(SETTINGS_JSON_ENV, '{"http_header_timeout": 3.0, "http_body_timeout": 4.5}')
    assert httpserver.client_timeouts() == (3.0, 4.5)

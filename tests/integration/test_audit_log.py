"""The audit log against real servers: fields, tamper detection, rotation, sinks, throttling, queries."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import admin_http
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server

ATTACKER_IP = "127.0.0.2"  # all of 127/8 is loopback on Linux: a second client address for free


# --------------------------------------------------------------------------- helpers


def wait_for(pred: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def admin_get(srv: Server, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    qs = "?" + urllib.parse.urlencode(params) if params else ""
    return admin_http.admin_get(srv, f"{path}{qs}", timeout=30)


def events(srv: Server, **params: str) -> list[dict[str, Any]]:
    status, doc = admin_get(srv, "audit/events", params)
    assert status == 200, doc
    recs: list[dict[str, Any]] = doc["events"]
    return recs


def audit_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", "audit", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def verify_json(data_dir: Path) -> tuple[int, dict[str, Any]]:
    out = audit_cli(data_dir, "verify", "--json")
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


def query_cli(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    out = audit_cli(data_dir, "query", "--json", *args)
    assert out.returncode == 0, out.stderr
    recs: list[dict[str, Any]] = json.loads(out.stdout)["events"]
    return recs


def toml_config(path: Path, audit: dict[str, Any]) -> Path:
    body = "[audit]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in audit.items())
    path.write_text(body)
    return path


def signed_from(srv: Server, source_ip: str, secret: str, path: str = "/") -> tuple[int, str]:
    """A SigV4 request sent from another loopback address (boto3 cannot pick its source address)."""
    url = f"{srv.endpoint}{path}"
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10, source_address=(source_ip, 0))
    try:
        conn.request("GET", path, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    code = body.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in body else ""
    return resp.status, code


class _Collector(BaseHTTPRequestHandler):
    batches: list[list[dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).batches.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[list[dict[str, Any]]]]]:
    handler = type("Hook", (_Collector,), {"batches": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/audit", handler.batches
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def syslog() -> Iterator[tuple[str, list[bytes]]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    got: list[bytes] = []

    def loop() -> None:
        while True:
            try:
                got.append(sock.recv(65536))
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()
    yield f"udp://127.0.0.1:{sock.getsockname()[1]}", got
    sock.close()


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
    webhook: tuple[str, list[list[dict[str, Any]]]],
    syslog: tuple[str, list[bytes]],
) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("audit")
    cfg = toml_config(
        base / "rs3gw.toml",
        {
            "webhook_url": webhook[0],
            "syslog": syslog[0],
            "auth_fail_limit": 5,
            "auth_fail_window": 60,
            "throttle_seconds": 600,
            "deny_spike_limit": 5,
            "deny_spike_window": 60,
        },
    )
    srv = start_server(base / "data", "--config", str(cfg))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def abucket(audited: Server) -> str:
    s3 = audited.client()
    s3.create_bucket(Bucket="audited-bucket")
    return "audited-bucket"


# --------------------------------------------------------------------------- what is recorded


def test_requests_are_recorded_with_their_fields(audited: Server, abucket: str) -> None:
    s3 = audited.client()
    put = s3.put_object(Bucket=abucket, Key="fields/obj", Body=b"hello audit")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=abucket, Key="fields/absent")
    second = audited.client(USER2[1], USER2[2])
    with pytest.raises(ClientError):
        second.list_objects_v2(Bucket=abucket)  # not second's bucket
    recs = {r["request_id"]: r for r in events(audited, bucket=abucket)}
    rec = recs[put["ResponseMetadata"]["RequestId"]]
    assert rec["type"] == "request" and rec["action"] == "PutObject"
    assert (rec["principal"], rec["access_key"]) == ("admin", ACCESS_KEY)
    assert (rec["bucket"], rec["key"]) == (abucket, "fields/obj")
    assert (rec["status"], rec["error"], rec["source_ip"]) == (200, "", "127.0.0.1")
    assert rec["bytes_in"] == len(b"hello audit") and rec["time"].endswith("Z")
    assert isinstance(rec["seq"], int) and len(rec["mac"]) == 64 and len(rec["prev"]) == 64
    miss = recs[missing.value.response["ResponseMetadata"]["RequestId"]]
    assert (miss["action"], miss["status"], miss["error"]) == ("GetObject", 404, "NoSuchKey")
    denied = [r for r in recs.values() if r["principal"] == USER2[0]]
    assert denied and denied[-1]["error"] == "AccessDenied" and denied[-1]["status"] == 403
    # Admin API calls are audited too.
    assert events(audited, action="Rs3gwAdmin", limit="1")[0]["principal"] == "admin"


def test_admin_query_is_primary_only(audited: Server) -> None:
    url = f"{audited.endpoint}/_rs3gw/admin/audit/events"
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    SigV4Auth(Credentials(USER2[1], USER2[2]), "s3", "us-east-1").add_auth(req)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, headers=dict(req.headers.items())), timeout=10)
    assert e.value.code == 403
    status, body = admin_get(audited, "audit/events", {"since": "yesterday-ish"})
    assert status == 400 and b"InvalidArgument" in body


def test_query_filters_cli_and_admin_api_agree(audited: Server, abucket: str) -> None:
    s3 = audited.client()
    second = audited.client(USER2[1], USER2[2])
    second.create_bucket(Bucket="audited-second")
    t0 = time.time()
    for i in range(3):
        second.put_object(Bucket="audited-second", Key=f"q{i}", Body=b"x")
    with pytest.raises(ClientError):
        second.head_object(Bucket="audited-second", Key="nope")
    s3.put_object(Bucket=abucket, Key="q-admin", Body=b"y")
    t1 = time.time()
    api = events(audited, bucket="audited-second")  # also flushes the writer
    cli = query_cli(audited.data_dir, "--bucket", "audited-second")
    assert [r["seq"] for r in api] == [r["seq"] for r in cli]
    assert [r["action"] for r in cli] == ["CreateBucket", "PutObject", "PutObject", "PutObject", "HeadObject"]
    puts = query_cli(
        audited.data_dir, "--user", USER2[0], "--action", "PutObject", "--bucket", "audited-second"
    )
    assert [r["key"] for r in puts] == ["q0", "q1", "q2"]
    # The remaining filters through the admin API (same Query code; saves a CLI start-up each).
    assert [r["key"] for r in events(audited, bucket="audited-second", result="404")] == ["nope"]
    assert [r["key"] for r in events(audited, bucket="audited-second", result="NoSuchKey")] == ["nope"]
    assert [r["status"] for r in events(audited, bucket="audited-second", result="error")] == [404]
    assert len(events(audited, bucket="audited-second", result="ok")) == 4
    window = query_cli(audited.data_dir, "--since", str(t0), "--until", str(t1), "--result", "ok")
    assert {(r["bucket"], r["key"]) for r in window if r["action"] == "PutObject"} == {
        ("audited-second", "q0"),
        ("audited-second", "q1"),
        ("audited-second", "q2"),
        (abucket, "q-admin"),
    }
    assert events(audited, until=str(t0 - 3600), bucket="audited-second") == []
    assert events(audited, user=USER2[1], action="HeadObject")[-1]["key"] == "nope"  # access key works too
    text = audit_cli(audited.data_dir, "query", "--bucket", "audited-second", "--result", "ok")
    assert text.returncode == 0 and text.stdout.count("PutObject") == 3


# --------------------------------------------------------------------------- tamper evidence


def _copy_audit(srv: Server, dest: Path) -> Path:
    admin_get(srv, "audit/stats")
    events(srv, limit="1")  # flush
    data = dest / "data"
    shutil.copytree(srv.data_dir / "audit", data / "audit")
    return data


@pytest.mark.parametrize("damage", ["edit", "delete", "reorder"])
def test_verify_passes_then_names_the_damaged_record(
    audited: Server, abucket: str, tmp_path: Path, damage: str
) -> None:
    s3 = audited.client()
    for i in range(5):
        s3.put_object(Bucket=abucket, Key=f"tamper/{i}", Body=b"z")
    rc, rep = verify_json(audited.data_dir)  # the live log
    assert rc == 0 and rep["ok"] and rep["records"] > 5, rep
    status, api = admin_get(audited, "audit/verify")
    assert status == 200 and api["ok"]

    data = _copy_audit(audited, tmp_path)
    log = data / "audit" / "audit-current.log"
    lines = log.read_bytes().splitlines(keepends=True)
    target = next(i for i, ln in enumerate(lines) if b'"key":"tamper/2"' in ln)
    seq = json.loads(lines[target])["seq"]
    if damage == "edit":
        lines[target] = lines[target].replace(b'"status":200', b'"status":403')
    elif damage == "delete":
        del lines[target]
    else:
        lines[target], lines[target + 1] = lines[target + 1], lines[target]
    log.write_bytes(b"".join(lines))
    out = audit_cli(data, "verify")
    assert out.returncode == 1 and "BROKEN" in out.stdout
    assert f"audit-current.log:{target + 1}:" in out.stdout, out.stdout
    rc, rep = verify_json(data)
    assert rc == 1
    first = rep["problems"][0]
    assert (first["file"], first["line"]) == ("audit-current.log", target + 1)
    if damage == "edit":
        assert first["seq"] == seq and "MAC mismatch" in first["reason"]
    elif damage == "delete":
        assert first["seq"] == seq + 1 and f"seq {seq} missing" in first["reason"]
    else:
        assert first["seq"] == seq + 1 and rep["problems"][1]["line"] == target + 2


# --------------------------------------------------------------------------- sinks


def test_webhook_and_syslog_receive_events(
    audited: Server,
    abucket: str,
    webhook: tuple[str, list[list[dict[str, Any]]]],
    syslog: tuple[str, list[bytes]],
) -> None:
    s3 = audited.client()
    s3.put_object(Bucket=abucket, Key="sink/webhook", Body=b"w")
    _, batches = webhook
    got = wait_for(lambda: [r for b in batches for r in b if r.get("key") == "sink/webhook"])
    assert got and got[0]["action"] == "PutObject" and got[0]["mac"]
    _, datagrams = syslog
    line = wait_for(lambda: [d for d in datagrams if b'"key":"sink/webhook"' in d])
    assert line and line[0].startswith(b"<134>1 ")  # local0.info, RFC 5424
    stats = admin_get(audited, "audit/stats")[1]
    assert stats["sinks"]["webhook"]["sent"] > 0 and stats["sinks"]["webhook"]["dropped"] == 0


def test_secret_keys_never_reach_the_log(
    audited: Server,
    abucket: str,
    webhook: tuple[str, list[list[dict[str, Any]]]],
    syslog: tuple[str, list[bytes]],
) -> None:
    s3 = audited.client()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": abucket, "Key": "fields/obj"})
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
    assert signed_from(audited, "127.0.0.1", SECRET_KEY)[0] == 200
    events(audited, limit="1")  # flush
    wait_for(lambda: any(r.get("action") == "Rs3gwAdmin" for b in webhook[1] for r in b))
    blobs = [p.read_bytes() for p in (audited.data_dir / "audit").iterdir() if p.is_file()]
    blobs += [json.dumps(webhook[1]).encode(), b"".join(syslog[1])]
    for secret in (SECRET_KEY, USER2[2]):
        assert not any(secret.encode() in b for b in blobs), secret
    assert any(ACCESS_KEY.encode() in b for b in blobs)  # the key id is logged, its secret is not


# --------------------------------------------------------------------------- security events


def test_brute_force_from_one_address_is_throttled_with_an_alert(audited: Server, abucket: str) -> None:
    for _ in range(5):
        assert signed_from(audited, ATTACKER_IP, "not-the-secret-at-all") == (403, "SignatureDoesNotMatch")
    # Throttled before any signature check, so even the right secret gets SlowDown from that address.
    assert signed_from(audited, ATTACKER_IP, SECRET_KEY) == (503, "SlowDown")
    assert signed_from(audited, ATTACKER_IP, "not-the-secret-at-all") == (503, "SlowDown")
    audited.client().head_bucket(Bucket=abucket)  # other addresses are untouched
    alerts = events(audited, action="AuthFailureThrottle")
    assert alerts and alerts[-1]["type"] == "alert" and alerts[-1]["source_ip"] == ATTACKER_IP
    slow = [r for r in events(audited, result="SlowDown") if r["type"] == "request"]
    assert slow and all(r["source_ip"] == ATTACKER_IP and r["status"] == 503 for r in slow)


def test_access_denied_spike_is_flagged(audited: Server, abucket: str) -> None:
    second = audited.client(USER2[1], USER2[2])
    for i in range(6):
        with pytest.raises(ClientError) as e:
            second.get_object(Bucket=abucket, Key=f"spike{i}")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    alerts = events(audited, action="AccessDeniedSpike")
    assert alerts and alerts[-1]["type"] == "alert" and USER2[0] in alerts[-1]["detail"]


# --------------------------------------------------------------------------- rotation, dead and S3 sinks


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory, audited: Server) -> Iterator[Server]:
    audited.client().create_bucket(Bucket="audit-archive")
    base = tmp_path_factory.mktemp("audit-rot")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(1)  # never accepted: the webhook's requests hang until their timeout
    cfg = toml_config(
        base / "rs3gw.toml",
        {
            "rotate_bytes": 4096,
            "compression": "gzip",
            "webhook_url": f"http://127.0.0.1:{dead.getsockname()[1]}/hook",
            "sink_queue_size": 2,
            "sink_retries": 2,
            "s3_endpoint": audited.endpoint,
            "s3_bucket": "audit-archive",
            "s3_prefix": "gw2/",
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
        },
    )
    srv = start_server(base / "data", "--config", str(cfg))
    yield srv
    srv.stop()
    dead.close()


def test_dead_webhook_does_not_slow_requests(rotating: Server) -> None:
    s3 = rotating.client()
    s3.create_bucket(Bucket="rot")
    took = []
    for i in range(40):
        t = time.monotonic()
        s3.put_object(Bucket="rot", Key=f"k{i:03d}", Body=b"r" * 100)
        took.append(time.monotonic() - t)
    # A sink blocking requests would cost its 5 s timeout; these finish while it hangs.
    assert max(took) < 2.0 and sum(took) < 10.0, took
    stats = wait_for(
        lambda: (s := admin_get(rotating, "audit/stats")[1])["sinks"]["webhook"]["dropped"] and s
    )
    assert stats and stats["sinks"]["webhook"]["sent"] == 0 and stats["sinks"]["webhook"]["dropped"] > 0, (
        stats
    )
    assert stats["dropped"] == 0  # the chain itself lost nothing


def test_rotation_compresses_and_verify_covers_all_segments(rotating: Server, tmp_path: Path) -> None:
    s3 = rotating.client()
    s3.create_bucket(Bucket="rot2")
    for i in range(30):
        s3.put_object(Bucket="rot2", Key=f"k{i:03d}", Body=b"r")
    events(rotating, limit="1")
    closed = sorted(p.name for p in (rotating.data_dir / "audit").glob("audit-*.log.gz"))
    assert len(closed) >= 3, closed
    rc, rep = verify_json(rotating.data_dir)
    assert rc == 0 and rep["first_seq"] == 1 and len(rep["segments"]) == len(closed) + 1, rep
    assert len(query_cli(rotating.data_dir, "--bucket", "rot2", "--action", "PutObject")) == 30
    # Edit one record inside a compressed segment of a copy: verify names that segment and line.
    data = _copy_audit(rotating, tmp_path)
    seg = data / "audit" / closed[1]
    lines = gzip.decompress(seg.read_bytes()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"principal":"admin"', b'"principal":"nobody"')
    seg.write_bytes(gzip.compress(b"".join(lines)))
    rc, rep = verify_json(data)
    assert rc == 1 and [(p["file"], p["line"]) for p in rep["problems"]] == [(closed[1], 2)], rep


def test_s3_sink_puts_batches_into_a_bucket(rotating: Server, audited: Server) -> None:
    s3 = rotating.client()
    s3.create_bucket(Bucket="rot3")
    s3.put_object(Bucket="rot3", Key="to-archive", Body=b"a")
    archive = audited.client()

    def archived() -> list[dict[str, Any]]:
        out = []
        for obj in archive.list_objects_v2(Bucket="audit-archive", Prefix="gw2/").get("Contents", []):
            body = archive.get_object(Bucket="audit-archive", Key=obj["Key"])["Body"].read()
            out += [json.loads(line) for line in body.splitlines()]
        return [r for r in out if r.get("key") == "to-archive"]

    got = wait_for(archived, timeout=20)
    assert got and got[0]["action"] == "PutObject" and got[0]["bucket"] == "rot3" and got[0]["mac"]


# --------------------------------------------------------------------------- several workers, restarts


def test_workers_share_one_chain_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data, "--workers", "2")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="multi")

        def burst(n: int) -> None:
            c = srv.client()
            for i in range(10):
                c.put_object(Bucket="multi", Key=f"w{n}-{i}", Body=b"m")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(burst, range(8)))
    finally:
        srv.stop()
    srv = start_server(data)
    try:
        srv.client().put_object(Bucket="multi", Key="after-restart", Body=b"m")
    finally:
        srv.stop()
    rc, rep = verify_json(data)
    assert rc == 0, rep
    recs = query_cli(data)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    puts = [r for r in recs if r["action"] == "PutObject"]
    assert len(puts) == 81 and puts[-1]["key"] == "after-restart"
    starts = {r["pid"] for r in recs if r["action"] == "Startup"}
    assert len(starts) == 3  # two workers, then the restarted server: all in one chain
    assert sum(r["action"] == "Shutdown" for r in recs) == 3  # graceful stops flush the queue

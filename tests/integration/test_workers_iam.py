"""`serve --workers 2`: an IAM change made through one worker (or by `rs3gw admin` from another
process) is in force for the next request on every worker, and a `kill -9` of the parent takes the
workers (and the port) with it.

Which worker answers a connection is the kernel's choice (SO_REUSEPORT hashes the address pair),
so each check opens fresh connections until every worker has been asked, finding the worker that
accepted a connection through /proc (no psutil in CI)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from admin_http import ROOT
from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server
from pg_cluster import metadata_args
from worker_procs import LISTEN, children, socket_inodes, sockets_held


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _holder(pids: list[int], inodes: set[str]) -> int | None:
    return next((pid for pid in pids if sockets_held(pid, inodes)), None)


def _wait_workers(srv: Server, n: int = 2) -> list[int]:
    """/ready answers once one worker is up: wait until all ``n`` hold their listening socket."""
    deadline = time.time() + 30
    while True:
        workers = children(srv.proc.pid)
        if len(workers) == n and all(_holder([w], socket_inodes(srv.port, LISTEN)) for w in workers):
            return workers
        assert time.time() < deadline, workers
        time.sleep(0.1)


def _signed_headers(
    srv: Server, creds: tuple[str, str], method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    req = AWSRequest(
        method=method,
        url=f"{srv.endpoint}{path}",
        data=body,
        headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
    )
    SigV4Auth(Credentials(*creds), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def on_every_worker(
    srv: Server, workers: list[int], creds: tuple[str, str], method: str = "GET", path: str = "/"
) -> dict[int, tuple[int, bytes]]:
    """The same signed request on a fresh connection to each worker: {worker pid: (status, body)}."""
    answers: dict[int, tuple[int, bytes]] = {}
    for _ in range(200):  # each connection lands on a worker at random
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            conn.request("GET", "/health")  # the connection is accepted once this is answered
            conn.getresponse().read()
            peer = conn.sock.getsockname()[1]
            worker = _holder(workers, socket_inodes(srv.port, peer_port=peer))
            if worker is None or worker in answers:
                continue
            conn.request(method, path, headers=_signed_headers(srv, creds, method, path))
            resp = conn.getresponse()
            answers[worker] = (resp.status, resp.read())
        finally:
            conn.close()
        if len(answers) == len(workers):
            return answers
    raise AssertionError(f"200 connections did not reach every worker: {sorted(answers)} of {workers}")


def assert_everywhere(
    srv: Server, workers: list[int], creds: tuple[str, str], status: int, needle: bytes = b"", path: str = "/"
) -> None:
    """``creds``' GET of ``path`` (ListBuckets by default) answers ``status`` on every worker."""
    answers = on_every_worker(srv, workers, creds, "GET", path)
    assert all(s == status and needle in body for s, body in answers.values()), answers


def admin(srv: Server, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    """An admin API call on a fresh connection: whichever worker the kernel picks makes the change."""
    full = f"/_rs3gw/admin/{path}"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, full, body=body or None, headers=_signed_headers(srv, ROOT, method, full, body))
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(body) if body.startswith(b"{") else body


def rs3gw_admin(data_dir: Path, *args: str) -> Any:
    """`rs3gw admin ...` against the server's store, as an operator on the same host would run it."""
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    meta = metadata_args(data_dir, ())  # the PostgreSQL database of data_dir's servers, if any
    if meta:
        env["RS3GW_METADATA"] = meta[1]
    proc = subprocess.run(
        [sys.executable, "-m", "rs3gw", "admin", *args, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # An hour between periodic reloads: only the generation counter can make the changes below visible.
    server = start_server(
        tmp_path_factory.mktemp("workers-iam") / "data", "--workers", "2", "--iam-refresh-interval", "3600"
    )
    try:
        yield server
    finally:
        server.stop()


def test_admin_api_changes_apply_on_every_worker_at_once(srv: Server) -> None:
    workers = _wait_workers(srv)
    name = f"wendy-{uuid.uuid4().hex[:6]}"
    assert admin(srv, "PUT", f"users/{name}")[0] == 201
    status, doc = admin(srv, "POST", f"users/{name}/keys")
    assert status == 201, doc
    creds = (doc["access_key"], doc["secret_key"])
    assert_everywhere(srv, workers, creds, 200)

    assert admin(srv, "POST", f"keys/{creds[0]}/disable")[0] == 200
    assert_everywhere(srv, workers, creds, 403, b"InvalidAccessKeyId")
    assert admin(srv, "POST", f"keys/{creds[0]}/enable")[0] == 200
    assert_everywhere(srv, workers, creds, 200)

    assert admin(srv, "POST", f"users/{name}/disable")[0] == 200
    assert_everywhere(srv, workers, creds, 403, b"InvalidAccessKeyId")
    assert admin(srv, "POST", f"users/{name}/enable")[0] == 200
    assert_everywhere(srv, workers, creds, 200)

    # An identity policy denying the listing of the user's own bucket: AccessDenied on every
    # worker at once, and lifted on every worker at once.
    bucket = f"wendy-{uuid.uuid4().hex[:8]}"
    assert on_every_worker(srv, workers[:1], creds, "PUT", f"/{bucket}")[workers[0]][0] == 200
    assert_everywhere(srv, workers, creds, 200, path=f"/{bucket}")
    deny = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
            ],
        }
    ).encode()
    assert admin(srv, "PUT", f"users/{name}/policy", deny)[0] == 204
    assert_everywhere(srv, workers, creds, 403, b"AccessDenied", path=f"/{bucket}")
    assert admin(srv, "DELETE", f"users/{name}/policy")[0] == 204
    assert_everywhere(srv, workers, creds, 200, path=f"/{bucket}")

    status, doc = admin(srv, "POST", f"keys/{creds[0]}/rotate")
    assert status == 201
    rotated = (doc["access_key"], doc["secret_key"])
    assert admin(srv, "DELETE", f"keys/{creds[0]}")[0] == 204
    assert_everywhere(srv, workers, creds, 403, b"InvalidAccessKeyId")
    assert_everywhere(srv, workers, rotated, 200)
    assert admin(srv, "DELETE", f"users/{name}")[0] == 204
    assert_everywhere(srv, workers, rotated, 403, b"InvalidAccessKeyId")


def test_cli_changes_apply_on_every_worker_at_once(srv: Server) -> None:
    workers = _wait_workers(srv)
    name = f"carl-{uuid.uuid4().hex[:6]}"
    rs3gw_admin(srv.data_dir, "user", "create", name)
    key = rs3gw_admin(srv.data_dir, "key", "create", name)
    creds = (key["access_key"], key["secret_key"])
    assert_everywhere(srv, workers, creds, 200)
    rs3gw_admin(srv.data_dir, "key", "disable", creds[0])
    assert_everywhere(srv, workers, creds, 403, b"InvalidAccessKeyId")
    rs3gw_admin(srv.data_dir, "key", "enable", creds[0])
    assert_everywhere(srv, workers, creds, 200)
    rs3gw_admin(srv.data_dir, "user", "delete", name)
    assert_everywhere(srv, workers, creds, 403, b"InvalidAccessKeyId")


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--workers", "2")
    workers: list[int] = []
    try:
        workers = _wait_workers(srv)
        os.kill(srv.proc.pid, signal.SIGKILL)  # no chance to stop its workers itself
        srv.proc.wait(10)
        killed = time.monotonic()
        while any(_alive(w) for w in workers):
            assert time.monotonic() - killed < 5, [w for w in workers if _alive(w)]
            time.sleep(0.05)
        took = time.monotonic() - killed
        assert took < 3, f"workers outlived their parent by {took:.1f} s"
        assert not socket_inodes(srv.port, LISTEN)  # nobody listens on the port any more
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", srv.port), timeout=2),
        ):
            pass
    finally:
        srv.stop()
        for w in workers:  # never leave a server behind, whatever failed above
            if _alive(w):
                os.kill(w, signal.SIGKILL)

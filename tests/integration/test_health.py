"""Liveness and readiness probes: unauthenticated, JSON, and never shadowing a bucket's objects."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.request
from typing import Any

from conftest import Server


def _get(server: Server, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_health_is_public_json(server: Server) -> None:
    status, headers, body = _get(server, "/health")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["status"] == "ok"
    assert headers["x-amz-request-id"]


def test_ready(server: Server) -> None:
    status, headers, body = _get(server, "/ready")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["content-type"] == "application/json"


def test_probes_with_query_string(server: Server) -> None:
    assert _get(server, "/health?verbose=1")[0] == 200


def test_health_over_https(tls_server: Server) -> None:
    ctx = ssl.create_default_context(cafile=tls_server.ca_file)
    with urllib.request.urlopen(f"{tls_server.endpoint}/health", timeout=10, context=ctx) as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"


def test_probe_names_do_not_hide_buckets(server: Server, s3: Any) -> None:
    """``health`` is a valid bucket name; its objects stay reachable and authenticated."""
    s3.create_bucket(Bucket="health")
    try:
        s3.put_object(Bucket="health", Key="x", Body=b"in the bucket")
        assert s3.get_object(Bucket="health", Key="x")["Body"].read() == b"in the bucket"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="health")["Contents"]] == ["x"]
        assert s3.list_objects(Bucket="health")["Contents"][0]["Key"] == "x"
        s3.head_bucket(Bucket="health")
        status, _, body = _get(server, "/health/x")
        assert status == 403 and b"AccessDenied" in body
        assert [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] == "health"] == ["health"]
    finally:
        s3.delete_object(Bucket="health", Key="x")
        s3.delete_bucket(Bucket="health")


def test_head_probe(server: Server) -> None:
    status, _, body = _get(server, "/health", "HEAD")
    assert status == 200 and body == b""

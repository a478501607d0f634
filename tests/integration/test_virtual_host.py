"""Virtual-host-style addressing (``bucket.s3.local``) next to path style, on a server with --domain.

There is no DNS for s3.local here, so requests are signed by botocore for the virtual-host URL and
sent with http.client to 127.0.0.1 with that Host header: exactly the bytes a client would send.
"""

from __future__ import annotations

import http.client
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server

DOMAIN = "s3.local"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def vhost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("vhost") / "data", "--domain", DOMAIN)
    yield srv
    srv.stop()


@pytest.fixture
def vbucket(vhost_server: Server) -> Iterator[str]:
    name = f"vh-{uuid.uuid4().hex[:12]}"
    status, _, body = vsend(vhost_server, "PUT", name, "/")
    assert status == 200, body
    yield name
    s3 = vhost_server.client()
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def vsend(
    server: Server,
    method: str,
    bucket: str | None,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    signed: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    host = f"{bucket}.{DOMAIN}:{server.port}" if bucket else f"{DOMAIN}:{server.port}"
    hdrs = dict(headers or {})
    if signed:
        req = AWSRequest(method=method, url=f"http://{host}{path}", data=body, headers=hdrs)
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
        hdrs = dict(req.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_put_get_head_delete_virtual_host(vhost_server: Server, vbucket: str) -> None:
    status, headers, body = vsend(vhost_server, "PUT", vbucket, "/dir/obj%20one.txt", b"virtual")
    assert status == 200, body
    status, _, body = vsend(vhost_server, "GET", vbucket, "/dir/obj%20one.txt")
    assert (status, body) == (200, b"virtual")
    status, headers, body = vsend(vhost_server, "HEAD", vbucket, "/dir/obj%20one.txt")
    assert status == 200 and headers["content-length"] == "7" and body == b""
    # The same object through path style on the same server.
    s3 = vhost_server.client()
    assert s3.get_object(Bucket=vbucket, Key="dir/obj one.txt")["Body"].read() == b"virtual"
    status, _, _ = vsend(vhost_server, "DELETE", vbucket, "/dir/obj%20one.txt")
    assert status == 204
    assert vsend(vhost_server, "HEAD", vbucket, "/dir/obj%20one.txt")[0] == 404


def test_list_virtual_host(vhost_server: Server, vbucket: str) -> None:
    s3 = vhost_server.client()
    for key in ("a/1", "a/2", "b"):
        s3.put_object(Bucket=vbucket, Key=key, Body=b"x")
    status, _, body = vsend(vhost_server, "GET", vbucket, "/?list-type=2&prefix=a%2F")
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.findtext(f"{NS}Name") == vbucket
    assert [e.text for e in root.iter(f"{NS}Key")] == ["a/1", "a/2"]
    status, _, body = vsend(vhost_server, "GET", vbucket, "/?location")
    assert status == 200 and b"LocationConstraint" in body


def test_bare_domain_is_service(vhost_server: Server, vbucket: str) -> None:
    status, _, body = vsend(vhost_server, "GET", None, "/")
    assert status == 200, body
    assert vbucket in [e.text for e in ET.fromstring(body).iter(f"{NS}Name")]


def test_virtual_host_errors(vhost_server: Server, vbucket: str) -> None:
    status, headers, body = vsend(vhost_server, "GET", vbucket, "/missing")
    assert status == 404 and ET.fromstring(body).findtext("Code") == "NoSuchKey"
    status, _, body = vsend(vhost_server, "GET", f"nobucket-{uuid.uuid4().hex[:8]}", "/")
    assert status == 404 and ET.fromstring(body).findtext("Code") == "NoSuchBucket"
    status, headers, body = vsend(vhost_server, "GET", vbucket, "/", signed=False)
    assert status == 403 and ET.fromstring(body).findtext("Code") == "AccessDenied"
    assert headers["x-amz-request-id"]


def test_signature_covers_the_host(vhost_server: Server, vbucket: str) -> None:
    """A request signed for one bucket's host must not be replayable against another bucket."""
    vsend(vhost_server, "PUT", vbucket, "/k", b"x")
    req = AWSRequest(method="GET", url=f"http://{vbucket}.{DOMAIN}:{vhost_server.port}/k")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", vhost_server.port, timeout=30)
    try:
        conn.putrequest("GET", "/k", skip_host=True)
        conn.putheader("Host", f"other.{DOMAIN}:{vhost_server.port}")
        for k, v in req.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 403 and ET.fromstring(body).findtext("Code") == "SignatureDoesNotMatch"


def test_path_style_still_works(vhost_server: Server, tmp_path: Path) -> None:
    s3: Any = vhost_server.client()
    name = f"ps-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"path style")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"path style"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    # Path-style requests to 127.0.0.1 with a raw Host header that is not under the domain.
    status, _, _ = vsend_path(vhost_server, "GET", "/")
    assert status == 200


def vsend_path(server: Server, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    req = AWSRequest(method=method, url=f"{server.endpoint}{path}")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_path_style_on_domain_host(vhost_server: Server, vbucket: str) -> None:
    """``Host: s3.local`` (no bucket label) is path style: the bucket comes from the path."""
    vhost_server.client().put_object(Bucket=vbucket, Key="k", Body=b"pd")
    status, _, body = vsend(vhost_server, "GET", None, f"/{vbucket}/k")
    assert (status, body) == (200, b"pd")


def test_host_header_is_case_insensitive(vhost_server: Server, vbucket: str) -> None:
    vhost_server.client().put_object(Bucket=vbucket, Key="k", Body=b"ci")
    host = f"{vbucket}.S3.Local:{vhost_server.port}"
    req = AWSRequest(method="GET", url=f"http://{host}/k", headers={"Host": host})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", vhost_server.port, timeout=30)
    try:
        conn.putrequest("GET", "/k", skip_host=True)
        for k, v in req.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"ci")
    finally:
        conn.close()

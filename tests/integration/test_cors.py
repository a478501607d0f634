"""Bucket CORS: the configuration operations (boto3), OPTIONS preflight and CORS headers on actual
responses (raw http.client), and a real headless Chromium page on another origin using fetch()."""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from conftest import Server, free_port

RULES = [
    {
        "ID": "uploads",
        "AllowedOrigins": ["https://*.example.com"],
        "AllowedMethods": ["PUT", "POST"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 600,
    },
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
]


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _request(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    u = urlparse(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def _preflight(
    server: Server, path: str, origin: str | None, method: str | None, hdrs: str | None = None
) -> Any:
    h = {}
    if origin is not None:
        h["Origin"] = origin
    if method is not None:
        h["Access-Control-Request-Method"] = method
    if hdrs is not None:
        h["Access-Control-Request-Headers"] = hdrs
    return _request(server, "OPTIONS", path, h)


@pytest.fixture
def cors_bucket(s3: Any, bucket: str) -> str:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    return bucket


def test_put_get_delete_cors(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert _err(e) == ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got == RULES
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert _err(e) == ("NoSuchCORSConfiguration", 404)


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["http://*.*.com"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["*"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, "MalformedXML"),
        ([{"AllowedOrigins": [], "AllowedMethods": ["GET"]}], "MalformedXML"),
    ],
    ids=["method", "two-wildcards", "expose-wildcard", "too-many", "no-origin"],
)
def test_invalid_cors(s3: Any, bucket: str, rules: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert _err(e) == (code, 400)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)


def test_cors_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="no-such-bucket-cors")
    assert _err(e) == ("NoSuchBucket", 404)


def test_preflight_allowed(server: Server, cors_bucket: str) -> None:
    status, h, _ = _preflight(
        server, f"/{cors_bucket}/some/key", "https://app.example.com", "PUT", "Content-Type, X-Amz-Date"
    )
    assert status == 200
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == "PUT, POST"
    assert h["access-control-allow-headers"] == "content-type, x-amz-date"
    assert h["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-allow-credentials"] == "true"
    assert "Origin" in h["vary"]
    # The second rule answers any origin for GET, with '*'.
    status, h, _ = _preflight(server, f"/{cors_bucket}", "http://anywhere.test", "GET")
    assert status == 200
    assert h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h


@pytest.mark.parametrize(
    ("origin", "method", "hdrs"),
    [
        ("https://evil.org", "PUT", None),
        ("https://app.example.com", "DELETE", None),
        ("https://app.example.com", "PUT", "authorization"),
        ("http://anywhere.test", "GET", "x-custom"),
    ],
)
def test_preflight_refused(
    server: Server, cors_bucket: str, origin: str, method: str, hdrs: str | None
) -> None:
    status, h, body = _preflight(server, f"/{cors_bucket}/k", origin, method, hdrs)
    assert status == 403
    assert b"<Code>AccessForbidden</Code>" in body
    assert b"CORSResponse" in body
    assert "access-control-allow-origin" not in h


def test_preflight_without_config_or_bucket(server: Server, bucket: str) -> None:
    for path in (f"/{bucket}/k", "/no-such-bucket-cors/k"):
        status, _, body = _preflight(server, path, "https://a.example.com", "GET")
        assert status == 403 and b"<Code>AccessForbidden</Code>" in body


def test_preflight_missing_headers(server: Server, cors_bucket: str) -> None:
    status, _, body = _preflight(server, f"/{cors_bucket}/k", None, "GET")
    assert status == 400 and b"<Code>BadRequest</Code>" in body
    status, _, body = _preflight(server, f"/{cors_bucket}/k", "https://a.example.com", None)
    assert status == 400 and b"<Code>BadRequest</Code>" in body


def test_actual_response_headers(server: Server, s3: Any, cors_bucket: str) -> None:
    s3.put_object(Bucket=cors_bucket, Key="k", Body=b"hello")
    url = urlparse(s3.generate_presigned_url("get_object", Params={"Bucket": cors_bucket, "Key": "k"}))
    path = f"{url.path}?{url.query}"
    status, h, body = _request(server, "GET", path, {"Origin": "https://app.example.com"})
    assert status == 200 and body == b"hello"
    assert h["access-control-allow-origin"] == "*"  # GET is allowed by the any-origin rule
    assert "Origin" in h["vary"]
    status, h, _ = _request(server, "GET", path, {})
    assert status == 200 and "access-control-allow-origin" not in h
    status, h, _ = _request(server, "HEAD", path, {"Origin": "https://x.test"})
    # The presigned URL was signed for GET; HEAD fails its signature but still gets CORS headers,
    # so a browser script can read the error.
    assert status == 403 and h["access-control-allow-origin"] == "*"
    missing = urlparse(s3.generate_presigned_url("get_object", Params={"Bucket": cors_bucket, "Key": "nope"}))
    status, h, body = _request(server, "GET", f"{missing.path}?{missing.query}", {"Origin": "https://x.test"})
    assert status == 404 and b"NoSuchKey" in body and h["access-control-allow-origin"] == "*"
    put = urlparse(s3.generate_presigned_url("put_object", Params={"Bucket": cors_bucket, "Key": "p"}))
    u = urlparse(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.request("PUT", f"{put.path}?{put.query}", body=b"x", headers={"Origin": "https://up.example.com"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 200
    assert r.getheader("access-control-allow-origin") == "https://up.example.com"
    assert r.getheader("access-control-expose-headers") == "ETag, x-amz-request-id"
    # A DELETE matches no rule: the answer carries no CORS headers.
    s3.delete_bucket_cors(Bucket=cors_bucket)
    status, h, _ = _request(server, "GET", path, {"Origin": "https://app.example.com"})
    assert status == 200 and "access-control-allow-origin" not in h


# -- a real browser ---------------------------------------------------------------------------

PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
(async () => {
  const out = {};
  try {
    const put = await fetch(%(put)s, {method: "PUT", body: "from the browser",
                                      headers: {"Content-Type": "text/plain"}});
    out.put = put.status;
    out.etag = put.headers.get("ETag");
    const get = await fetch(%(get)s);
    out.get = get.status;
    out.body = await get.text();
  } catch (e) { out.error = String(e); }
  try { await fetch(%(denied)s, {method: "DELETE"}); out.denied = "allowed"; }
  catch (e) { out.denied = "blocked"; }
  document.getElementById("out").textContent = "RESULT" + JSON.stringify(out);
})();
</script></body></html>"""


@pytest.fixture
def page_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    # "localhost" vs the gateway's "127.0.0.1": a different origin, so the browser enforces CORS.
    yield f"http://localhost:{port}", pages
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_browser_fetch_with_presigned_urls(
    s3: Any, bucket: str, page_server: tuple[str, dict[str, bytes]], tmp_path: Any
) -> None:
    origin, pages = page_server
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [origin],
                    "AllowedMethods": ["GET", "PUT"],
                    "AllowedHeaders": ["content-type"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    urls = {
        "put": s3.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "b.txt", "ContentType": "text/plain"}
        ),
        "get": s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "b.txt"}),
        "denied": s3.generate_presigned_url("delete_object", Params={"Bucket": bucket, "Key": "gone"}),
    }
    pages["/page.html"] = (PAGE % {k: json.dumps(v) for k, v in urls.items()}).encode()
    cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"{origin}/page.html",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    dom = proc.stdout.decode()
    assert "RESULT" in dom, proc.stderr.decode()[-2000:]
    result = json.loads(dom.split("RESULT", 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    assert result["put"] == 200 and result["etag"], result
    assert result["get"] == 200 and result["body"] == "from the browser", result
    # DELETE is not in the rule: the preflight fails and the browser never sends the request.
    assert result["denied"] == "blocked", result
    assert s3.get_object(Bucket=bucket, Key="gone")["Body"].read() == b"x"
    assert s3.get_object(Bucket=bucket, Key="b.txt")["ContentType"] == "text/plain"

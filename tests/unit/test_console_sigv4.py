"""The console's WebCrypto SigV4 signer (console/static/sigv4.js), run in Node, against botocore.

botocore signs first with the real clock; its X-Amz-Date is handed to the JS so both sign the
same instant. The browser test (tests/integration/test_console_browser.py) proves the same signer
against the gateway itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import rs3gw

NODE = shutil.which("node")
SIGNER = Path(rs3gw.__file__).parent / "console" / "static" / "sigv4.js"
CREDS = Credentials("AKIDCONSOLETEST", "console/secret+key=0123456789")
HOST = "127.0.0.1:9000"
PATH = "/my-bucket/dir/a b+c~ü(1).txt"
QUERY = [("prefix", "a b/ü"), ("list-type", "2"), ("delimiter", "/")]

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

HARNESS = """
import * as sig from %s;
const args = JSON.parse(process.argv[1]);
const date = new Date(args.date);
const out = {};
out.payload = await sig.sha256Hex(args.body);
out.signed = await sig.signRequest({...args.common, date, headers: args.headers, payloadHash: out.payload});
out.presigned = await sig.presign({...args.common, date, expires: 900});
console.log(JSON.stringify(out));
"""


def _wire_url(query: list[tuple[str, str]]) -> str:
    from urllib.parse import quote, urlencode

    return f"http://{HOST}{quote(PATH)}?" + urlencode(query, quote_via=quote)


def _run_js(date_iso: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    assert NODE is not None
    common = {
        "method": "PUT",
        "host": HOST,
        "path": PATH,
        "query": QUERY,
        "region": "eu-west-3",
        "accessKey": CREDS.access_key,
        "secretKey": CREDS.secret_key,
    }
    args = json.dumps({"date": date_iso, "body": body, "headers": headers, "common": common})
    script = HARNESS % json.dumps(SIGNER.as_uri())
    proc = subprocess.run(
        [NODE, "--input-type=module", "-e", script, args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _iso(stamp: str) -> str:
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def test_header_signature_matches_botocore() -> None:
    body = "<Tagging>héllo wörld</Tagging>"
    headers = {"content-type": "application/xml", "x-amz-meta-note": "  two   spaces "}
    req = AWSRequest("PUT", _wire_url(QUERY), data=body.encode(), headers=dict(headers))
    S3SigV4Auth(CREDS, "s3", "eu-west-3").add_auth(req)
    stamp = req.headers["X-Amz-Date"]
    js = _run_js(_iso(stamp), body, headers)
    assert js["payload"] == req.headers["X-Amz-Content-SHA256"]
    assert js["signed"]["headers"]["x-amz-date"] == stamp
    assert js["signed"]["headers"]["authorization"] == req.headers["Authorization"]
    assert "host" not in js["signed"]["headers"]  # the browser supplies Host itself


def test_presigned_url_matches_botocore() -> None:
    req = AWSRequest("PUT", _wire_url(QUERY))
    S3SigV4QueryAuth(CREDS, "s3", "eu-west-3", expires=900).add_auth(req)
    boto = dict(parse_qsl(urlsplit(req.url).query))
    js = _run_js(_iso(boto["X-Amz-Date"]), "", {})
    js_path, js_query = js["presigned"].split("?", 1)
    assert js_path == urlsplit(req.url).path
    assert dict(parse_qsl(js_query)) == boto

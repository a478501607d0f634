"""SigV4-signed GETs to a running gateway's own endpoints (the admin API, admin metrics).

Plain urllib rather than boto3, because these routes are not S3 operations: the test sees the raw
status and body, error statuses included, exactly as an operator's tooling would.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server

ROOT = (ACCESS_KEY, SECRET_KEY)


def signed_get(
    srv: Server, path: str, creds: tuple[str, str] = ROOT, timeout: float = 10.0
) -> tuple[int, bytes]:
    """GET PATH (from the endpoint's root, query included) signed as CREDS: (status, body)."""
    url = f"{srv.endpoint}{path}"
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    SigV4Auth(Credentials(*creds), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, method="GET", headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def admin_get(
    srv: Server, path: str, creds: tuple[str, str] = ROOT, timeout: float = 10.0
) -> tuple[int, Any]:
    """GET /_rs3gw/admin/PATH: (status, parsed JSON) when it succeeds, (status, raw body) when not."""
    status, body = signed_get(srv, f"/_rs3gw/admin/{path}", creds, timeout)
    return status, json.loads(body) if 200 <= status < 300 else body

"""Shared helpers of the Object Lock tests: lock buckets that clean up after themselves, error
codes, and SigV4-signed raw requests (to send what boto3 never sends, e.g. no checksum at all)."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server


def err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def hdrs(resp: dict[str, Any]) -> dict[str, str]:
    return dict(resp["ResponseMetadata"]["HTTPHeaders"])


def ahead(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


def wait_until(when: datetime.datetime) -> None:
    delay = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay + 0.05)


def delete_all_versions(s3: Any, bucket: str) -> None:
    """Release every hold, bypass governance, delete every version and the bucket. COMPLIANCE
    versions must have expired already (tests use retain-until dates a few seconds ahead)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            with contextlib.suppress(ClientError):
                s3.put_object_legal_hold(
                    Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"], LegalHold={"Status": "OFF"}
                )
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(
                Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True
            )
    s3.delete_bucket(Bucket=bucket)


@contextlib.contextmanager
def lock_bucket(s3: Any, prefix: str = "lock") -> Iterator[str]:
    """A bucket created with Object Lock enabled, emptied (bypassing governance) afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    try:
        yield name
    finally:
        try:
            delete_all_versions(s3, name)
        except ClientError:  # a COMPLIANCE version still in force: wait it out, retry once
            time.sleep(5)
            delete_all_versions(s3, name)


def signed(
    server: Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One SigV4-signed request with exactly these headers (no checksum unless given)."""
    url = f"{server.endpoint}{path}"
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    start = body.find(b"<Code>") + 6
    return body[start : body.find(b"</Code>")].decode()

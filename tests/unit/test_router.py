"""Routing table tests: hand-picked requests, self-routing of every spec, coverage of botocore's model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.loaders  # type: ignore[import-untyped]
import pytest

from rs3gw.errors import MethodNotAllowed, S3Error
from rs3gw.protocol.router import RouteSpec, route, routes, scope_of
from rs3gw.protocol.routes_generated import ROUTES, SKIPPED

ROOT = Path(__file__).resolve().parents[2]
COPY = {"x-amz-copy-source": "src/key"}
PART = {"partNumber": "1", "uploadId": "x"}

# Model operations intentionally absent from ROUTES, and why.
EXPECTED_SKIPPED = {
    "WriteGetObjectResponse": "S3 Object Lambda, host-prefixed endpoint",
    "ListDirectoryBuckets": "S3 Express control plane; identical wire request to ListBuckets",
    "GetBucketLifecycle": "deprecated alias of GetBucketLifecycleConfiguration",
    "PutBucketLifecycle": "deprecated alias of PutBucketLifecycleConfiguration",
    "GetBucketNotification": "deprecated alias of GetBucketNotificationConfiguration",
    "PutBucketNotification": "deprecated alias of PutBucketNotificationConfiguration",
}
HAND_ADDED = {"PreflightRequest", "PostObject"}

CASES: list[tuple[str, str | None, str | None, dict[str, str], dict[str, str], str]] = [
    ("GET", None, None, {}, {}, "ListBuckets"),
    ("GET", "b", None, {"list-type": "2"}, {}, "ListObjectsV2"),
    (
        "GET",
        "b",
        None,
        {"list-type": "2", "prefix": "a/", "max-keys": "5", "delimiter": "/"},
        {},
        "ListObjectsV2",
    ),
    ("GET", "b", None, {}, {}, "ListObjects"),
    ("GET", "b", None, {"prefix": "a", "marker": "m"}, {}, "ListObjects"),
    ("GET", "b", None, {"versions": ""}, {}, "ListObjectVersions"),
    ("GET", "b", None, {"uploads": ""}, {}, "ListMultipartUploads"),
    ("GET", "b", None, {"location": ""}, {}, "GetBucketLocation"),
    ("GET", "b", None, {"versioning": ""}, {}, "GetBucketVersioning"),
    ("GET", "b", None, {"analytics": "", "id": "a"}, {}, "GetBucketAnalyticsConfiguration"),
    ("GET", "b", None, {"analytics": ""}, {}, "ListBucketAnalyticsConfigurations"),
    ("GET", "b", None, {"session": ""}, {}, "CreateSession"),
    ("POST", "b", None, {"delete": ""}, {"content-type": "application/xml"}, "DeleteObjects"),
    ("PUT", "b", None, {}, {}, "CreateBucket"),
    ("PUT", "b", None, {"versioning": ""}, {}, "PutBucketVersioning"),
    ("DELETE", "b", None, {}, {}, "DeleteBucket"),
    ("HEAD", "b", None, {}, {}, "HeadBucket"),
    ("HEAD", "b", "", {}, {}, "HeadBucket"),
    ("PUT", "b", "k", {}, {}, "PutObject"),
    ("PUT", "b", "k", {"x-id": "PutObject"}, {}, "PutObject"),
    ("PUT", "b", "k", {}, COPY, "CopyObject"),
    ("PUT", "b", "k", PART, {}, "UploadPart"),
    ("PUT", "b", "k", PART, COPY, "UploadPartCopy"),
    ("PUT", "b", "k", {"tagging": ""}, {}, "PutObjectTagging"),
    ("GET", "b", "k", {}, {}, "GetObject"),
    ("GET", "b", "a/b/c.txt", {"response-content-type": "text/plain", "versionId": "v"}, {}, "GetObject"),
    ("GET", "b", "k", {"partNumber": "2"}, {}, "GetObject"),
    (
        "GET",
        "b",
        "k",
        {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Signature": "abc", "X-Amz-Expires": "60"},
        {},
        "GetObject",
    ),
    ("GET", "b", "k", {"uploadId": "x"}, {}, "ListParts"),
    ("GET", "b", "k", {"uploadId": "x", "max-parts": "10"}, {}, "ListParts"),
    ("GET", "b", "k", {"tagging": ""}, {}, "GetObjectTagging"),
    ("GET", "b", "k", {"tagging": "", "versionId": "v"}, {}, "GetObjectTagging"),
    ("GET", "b", "k", {"acl": ""}, {}, "GetObjectAcl"),
    ("GET", "b", "k", {"attributes": ""}, {"x-amz-object-attributes": "ETag"}, "GetObjectAttributes"),
    ("HEAD", "b", "k", {}, {}, "HeadObject"),
    ("HEAD", "b", "k", {"partNumber": "1"}, {}, "HeadObject"),
    ("POST", "b", "k", {"uploads": ""}, {}, "CreateMultipartUpload"),
    ("POST", "b", "k", {"uploadId": "x"}, {}, "CompleteMultipartUpload"),
    ("POST", "b", "k", {"select": "", "select-type": "2"}, {}, "SelectObjectContent"),
    ("POST", "b", "k", {"restore": ""}, {}, "RestoreObject"),
    ("DELETE", "b", "k", {}, {}, "DeleteObject"),
    ("DELETE", "b", "k", {"versionId": "v"}, {}, "DeleteObject"),
    ("DELETE", "b", "k", {"uploadId": "x"}, {}, "AbortMultipartUpload"),
    (
        "OPTIONS",
        "b",
        None,
        {},
        {"origin": "https://x", "access-control-request-method": "PUT"},
        "PreflightRequest",
    ),
    ("OPTIONS", "b", "k", {}, {"origin": "https://x"}, "PreflightRequest"),
    ("POST", "b", None, {}, {"content-type": "multipart/form-data; boundary=xyz"}, "PostObject"),
    ("POST", "b", None, {}, {"content-type": "Multipart/Form-Data; boundary=xyz"}, "PostObject"),
]

NOT_ALLOWED: list[tuple[str, str | None, str | None, dict[str, str], dict[str, str]]] = [
    ("PATCH", "b", "k", {}, {}),
    ("PUT", "b", None, {"uploads": ""}, {}),  # sub-resource known for GET, not PUT
    ("DELETE", "b", None, {"location": ""}, {}),
    ("PUT", "b", "k", {"uploadId": "x"}, {}),  # UploadPart without partNumber must not be PutObject
    ("PUT", "b", "k", {"uploads": ""}, {}),
    ("GET", "b", "k", {"delete": ""}, {}),
    ("GET", "b", "k", {"select": "", "select-type": "2"}, {}),
    ("POST", "b", None, {}, {}),  # no ?delete and not a form upload
    ("POST", "b", None, {}, {"content-type": "application/xml"}),
    ("POST", "b", "k", {}, {}),
    ("OPTIONS", None, None, {}, {}),
    ("PUT", None, None, {}, {}),
    ("DELETE", None, None, {}, {}),
    ("GET", "b", "k", {"tagging": "", "acl": ""}, {}),  # two sub-resources at once
]


@pytest.mark.parametrize(("method", "bucket", "key", "query", "headers", "expected"), CASES)
def test_route(
    method: str,
    bucket: str | None,
    key: str | None,
    query: dict[str, str],
    headers: dict[str, str],
    expected: str,
) -> None:
    assert route(method, bucket, key, query, headers) == expected


@pytest.mark.parametrize(("method", "bucket", "key", "query", "headers"), NOT_ALLOWED)
def test_method_not_allowed(
    method: str, bucket: str | None, key: str | None, query: dict[str, str], headers: dict[str, str]
) -> None:
    with pytest.raises(MethodNotAllowed) as exc:
        route(method, bucket, key, query, headers)
    assert isinstance(exc.value, S3Error)
    assert exc.value.status == 405
    assert exc.value.extra["Method"] == method


def _request_for(spec: RouteSpec) -> tuple[str | None, str | None, dict[str, str], dict[str, str]]:
    bucket = None if spec.scope == "service" else "bucket"
    key = "dir/key" if spec.scope == "object" else None
    query = {k: ("" if v is None else v) for k, v in spec.query}
    headers = dict.fromkeys(spec.headers, "x")
    if spec.operation == "PostObject":
        headers["content-type"] = "multipart/form-data; boundary=b"
    return bucket, key, query, headers


@pytest.mark.parametrize("spec", ROUTES, ids=lambda s: f"{s.operation}-{s.scope}")
def test_every_spec_routes_to_itself(spec: RouteSpec) -> None:
    bucket, key, query, headers = _request_for(spec)
    assert scope_of(bucket, key) == spec.scope
    assert route(spec.method, bucket, key, query, headers) == spec.operation
    # Unrelated query parameters and headers do not change the answer.
    query |= {"X-Amz-Signature": "s", "max-keys": "1", "response-content-type": "a/b"}
    headers |= {"host": "h", "x-amz-date": "d", "content-length": "0"}
    assert route(spec.method, bucket, key, query, headers) == spec.operation


def test_specs_are_unique_and_well_formed() -> None:
    sigs = [(s.method, s.scope, frozenset(s.query), frozenset(s.headers)) for s in ROUTES]
    assert len(sigs) == len(set(sigs))
    assert routes() is ROUTES
    for s in ROUTES:
        assert s.scope in {"service", "bucket", "object"}
        assert s.method in {"GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"}
        assert all(h == h.lower() for h in s.headers)
        assert all(k != "x-id" for k, _ in s.query)


def _model() -> dict[str, Any]:
    model: dict[str, Any] = botocore.loaders.Loader().load_service_model("s3", "service-2")
    return model


def test_model_operations_are_all_routed_or_skipped() -> None:
    model_ops = set(_model()["operations"])
    routed = {s.operation for s in ROUTES}
    missing = model_ops - routed - set(EXPECTED_SKIPPED)
    assert not missing, f"model operations missing from ROUTES (regenerate or skip): {sorted(missing)}"
    assert routed - model_ops == HAND_ADDED
    assert set(SKIPPED) == set(EXPECTED_SKIPPED)
    assert not routed & set(EXPECTED_SKIPPED)


def test_routes_match_model_uris() -> None:
    """Each spec's method, scope and URI query items agree with the model."""
    scopes = {"/": "service", "/{Bucket}": "bucket", "/{Bucket}/{Key+}": "object"}
    ops = _model()["operations"]
    for spec in ROUTES:
        if spec.operation in HAND_ADDED:
            continue
        http = ops[spec.operation]["http"]
        path, _, qs = http["requestUri"].partition("?")
        assert http["method"] == spec.method
        assert scopes[path] == spec.scope
        for item in filter(None, qs.split("&")):
            k, eq, v = item.partition("=")
            if k != "x-id":
                assert (k, v if eq else None) in spec.query, (spec.operation, item)


def _load_script(name: str) -> ModuleType:
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_generated_table_is_up_to_date() -> None:
    gen = _load_script("gen_routes")
    assert gen.main(["--check"]) == 0, "run: .venv/bin/python scripts/gen_routes.py"


def test_compat_doc_lists_every_routed_operation() -> None:
    doc = _load_script("gen_compat_doc")
    text = doc.render({"GetObject", "PutObject"})
    for s in ROUTES:
        assert f"| {s.operation} |" in text
    assert "| GetObject | `GET /{Bucket}/{Key+}` | implemented |" in text
    assert "| GetObjectTagging | `GET /{Bucket}/{Key+}?tagging` | not implemented (501) |" in text

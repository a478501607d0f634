"""The JavaScript S3 clients JS users run, against a real gateway: the AWS SDK for JavaScript v3 (with
its 3.729+ defaults: CRC32 checksums, aws-chunked streaming trailers, GET checksum validation), its
lib-storage multipart Upload and presigner, and MinIO's `minio` package.

The checks live in node scripts (js_clients/*.mjs); each script runs once per server flavour and
reports one JSON line per check, and each check is one test here. Running a script per check would
pay node's start and the SDK's import (~0.5 s) two dozen times over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket, start_server
from js_clients import js_clients_dir

SCRIPTS = Path(__file__).resolve().parent / "js_clients"
AWS = SCRIPTS / "aws_sdk_v3.mjs"
MINIO = SCRIPTS / "minio_js.mjs"
MARK = "@@rs3gw-js-check "
VHOST_DOMAIN = "s3.local"  # the scripts resolve it and its subdomains to 127.0.0.1 themselves

AWS_CHECKS = [
    "put_string_default_crc32",
    "put_buffer_get_validates_checksum",
    "put_stream_known_length_aws_chunked",
    "put_stream_unknown_length",
    "checksum_algorithms",
    "wrong_checksum_rejected",
    "head_object_metadata",
    "list_objects_v2_pagination",
    "delete_objects",
    "copy_object",
    "lib_storage_upload_multipart",
    "lib_storage_upload_multipart_sha256",
    "lib_storage_upload_small_single_put",
    "presigned_put_and_get_with_fetch",
    "range_get",
    "conditional_get",
    "error_shapes",
    "bucket_lifecycle",
    "addressing_style_on_the_wire",
]
# Over TLS: the checks whose transport differs (streamed bodies, multipart, fetch of presigned URLs).
AWS_TLS_CHECKS = [
    "put_string_default_crc32",
    "put_stream_known_length_aws_chunked",
    "lib_storage_upload_multipart",
    "presigned_put_and_get_with_fetch",
    "addressing_style_on_the_wire",
]
MINIO_CHECKS = [
    "make_bucket_exists_remove",
    "put_buffer_and_string",
    "put_stream_known_and_unknown_size",
    "get_partial_object",
    "stat_object_metadata",
    "list_objects_v2_stream",
    "fput_object_multipart",
    "presigned_get_and_put",
    "remove_objects",
    "copy_object",
]
MINIO_TLS_CHECKS = ["put_buffer_and_string", "fput_object_multipart", "presigned_get_and_put"]


@pytest.fixture(scope="module")
def js_modules() -> Path:
    """The pinned npm install; skips the module, saying why, when node/npm or the install fail."""
    try:
        return js_clients_dir()
    except RuntimeError as e:
        pytest.skip(str(e))


def run_script(
    script: Path, modules: Path, server: Server, checks: list[str] | None = None, **extra: Any
) -> dict[str, dict[str, Any]]:
    """Run SCRIPT's CHECKS (all when None) against SERVER in a fresh bucket; results by check name.

    The bucket is made and emptied with boto3 so a client bug cannot leave it behind; the checks that
    are about bucket calls make their own buckets."""
    s3 = server.client()
    bucket = f"js-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    endpoint = server.endpoint
    if extra.get("domain"):
        endpoint = f"http://{extra['domain']}:{server.port}"
    cfg = {
        "modules": str(modules),
        "endpoint": endpoint,
        "accessKey": ACCESS_KEY,
        "secretKey": SECRET_KEY,
        "bucket": bucket,
        "checks": checks,
        "caFile": server.ca_file,
        **extra,
    }
    env = {**os.environ, "RS3GW_JS_CONFIG": json.dumps(cfg), "NODE_NO_WARNINGS": "1"}
    if server.ca_file:
        env["NODE_EXTRA_CA_CERTS"] = server.ca_file  # for fetch() of presigned URLs
    node = shutil.which("node")
    assert node is not None
    try:
        done = subprocess.run([node, str(script)], capture_output=True, text=True, env=env, timeout=180)
    finally:
        cleanup_bucket(s3, bucket)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            r = json.loads(line[len(MARK) :])
            results[r["name"]] = r
    expected = set(checks) if checks is not None else None
    if done.returncode != 0 or (expected is not None and set(results) != expected):
        pytest.fail(
            f"{script.name} exited {done.returncode} with results for {sorted(results)}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return results


def check_result(results: dict[str, dict[str, Any]], name: str) -> None:
    r = results[name]
    assert r["ok"], f"{name} failed after {r['ms']} ms:\n{r.get('error')}"


@pytest.fixture(scope="module")
def vhost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("js-vhost") / "data", "--domain", VHOST_DOMAIN)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def aws_path_style(js_modules: Path, server: Server) -> dict[str, dict[str, Any]]:
    return run_script(AWS, js_modules, server, AWS_CHECKS)


@pytest.fixture(scope="module")
def aws_virtual_host(js_modules: Path, vhost_server: Server) -> dict[str, dict[str, Any]]:
    return run_script(AWS, js_modules, vhost_server, AWS_CHECKS, domain=VHOST_DOMAIN)


@pytest.fixture(scope="module")
def aws_tls(js_modules: Path, tls_server: Server) -> dict[str, dict[str, Any]]:
    return run_script(AWS, js_modules, tls_server, AWS_TLS_CHECKS)


@pytest.fixture(scope="module")
def minio_http(js_modules: Path, server: Server) -> dict[str, dict[str, Any]]:
    return run_script(MINIO, js_modules, server, MINIO_CHECKS)


@pytest.fixture(scope="module")
def minio_tls(js_modules: Path, tls_server: Server) -> dict[str, dict[str, Any]]:
    return run_script(MINIO, js_modules, tls_server, MINIO_TLS_CHECKS)


@pytest.mark.parametrize("check", AWS_CHECKS)
def test_aws_sdk_v3_path_style(aws_path_style: dict[str, dict[str, Any]], check: str) -> None:
    check_result(aws_path_style, check)


@pytest.mark.parametrize("check", AWS_CHECKS)
def test_aws_sdk_v3_virtual_host(aws_virtual_host: dict[str, dict[str, Any]], check: str) -> None:
    """forcePathStyle false: the bucket goes in the Host header (bucket.s3.local), as with real S3."""
    check_result(aws_virtual_host, check)


@pytest.mark.parametrize("check", AWS_TLS_CHECKS)
def test_aws_sdk_v3_tls(aws_tls: dict[str, dict[str, Any]], check: str) -> None:
    check_result(aws_tls, check)


@pytest.mark.parametrize("check", MINIO_CHECKS)
def test_minio_js(minio_http: dict[str, dict[str, Any]], check: str) -> None:
    check_result(minio_http, check)


@pytest.mark.parametrize("check", MINIO_TLS_CHECKS)
def test_minio_js_tls(minio_tls: dict[str, dict[str, Any]], check: str) -> None:
    check_result(minio_tls, check)


@pytest.mark.parametrize(("script", "listed"), [(AWS, AWS_CHECKS), (MINIO, MINIO_CHECKS)])
def test_every_script_check_is_run(js_modules: Path, script: Path, listed: list[str]) -> None:
    """A check added to a script but not to the lists above would otherwise never run."""
    cfg = {"modules": str(js_modules), "listOnly": True, "endpoint": "http://127.0.0.1:9", "bucket": "x"}
    cfg |= {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    env = {**os.environ, "RS3GW_JS_CONFIG": json.dumps(cfg), "NODE_NO_WARNINGS": "1"}
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, str(script)], capture_output=True, text=True, env=env, timeout=60)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    assert done.returncode == 0 and len(lines) == 1, done.stderr[-2000:]
    assert sorted(json.loads(lines[0][len(MARK) :])["names"]) == sorted(listed)

"""Shared fixtures: a real `rs3gw serve` subprocess on loopback (HTTP and HTTPS) and real clients."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backend_matrix import backend_args, skip_local_only, stop_shared_seaweed
from pg_cluster import metadata_args, pg_cluster, stop_shared_cluster  # noqa: F401 - pg_cluster: a fixture

ACCESS_KEY = "rs3gwtestkey"
SECRET_KEY = "rs3gw-test-secret-key-0123456789"
USER2 = ("second", "rs3gwsecondkey", "rs3gw-second-secret-key-987654")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long soak/benchmark/big-object tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_local_only(items)  # RS3GW_TEST_BACKEND=s3 (tests/backend_matrix.py)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: use --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_shared_cluster()  # started on first use by pg_cluster / RS3GW_TEST_METADATA=postgresql
    stop_shared_seaweed()  # started on first use under RS3GW_TEST_BACKEND=s3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    endpoint: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    ca_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **cfg: Any) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": cfg.pop("addressing_style", "path")},
            retries={"max_attempts": cfg.pop("max_attempts", 1)},
            **cfg,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=config,
            verify=self.ca_file if self.ca_file else True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    data_dir: Path, *extra_args: str, tls: tuple[Path, Path] | None = None, env: dict[str, str] | None = None
) -> Server:
    # The metadata and backend services first: starting PostgreSQL (or SeaweedFS) may take the port
    # free_port() just found free, and the server then fails to bind (seen once in CI).
    services = [*metadata_args(data_dir, extra_args), *backend_args(data_dir, extra_args, env)]
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "rs3gw",
        "serve",
        "--data-dir",
        str(data_dir),
        "--address",
        f"127.0.0.1:{port}",
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
        "--user",
        ":".join(USER2),
        *extra_args,
        *services,
    ]
    scheme = "http"
    if tls:
        args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        scheme = "https"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}-server.log"
    fh = open(log, "wb")  # noqa: SIM115 - handed to the child process
    # The suite sends bad signatures from 127.0.0.1 on purpose; the throttle test attacks from 127.0.0.2.
    child_env = {"RS3GW_AUDIT_THROTTLE_EXEMPT": "127.0.0.1", **os.environ, **(env or {})}
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=child_env)
    server = Server(
        f"{scheme}://127.0.0.1:{port}", data_dir, proc, port, log, ca_file=str(tls[0]) if tls else None
    )
    wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 20.0) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=server.ca_file) if server.ca_file else None
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/ready", timeout=1, context=ctx) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not ready: {server.log.read_text()}")


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made with the cryptography package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("srv") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("tls")
    srv = start_server(base / "data", tls=make_cert(base))
    yield srv
    srv.stop()


@pytest.fixture(params=["http", "https"])
def any_server(request: pytest.FixtureRequest, server: Server, tls_server: Server) -> Server:
    return server if request.param == "http" else tls_server


@pytest.fixture
def s3(server: Server) -> Any:
    return server.client()


@contextlib.contextmanager
def fresh_bucket(s3: Any, prefix: str = "test") -> Iterator[str]:
    """A new, empty bucket for one test; emptied and removed afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        cleanup_bucket(s3, name)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3) as name:
        yield name


def cleanup_bucket(s3: Any, name: str) -> None:
    try:
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=name)
    except Exception:  # best-effort cleanup must not mask the test result
        pass


def put_fast(server: Server, bucket: str, keys: list[str]) -> None:
    """Thousands of one-byte objects: presigned PUTs over 4 keep-alive connections (boto3 calls cost
    several ms of client CPU each; the listings under test still go through boto3)."""
    s3 = server.client(signature_version="s3v4")
    host = urllib.parse.urlsplit(server.endpoint)

    def run(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection(host.hostname or "", host.port)
        try:
            for k in chunk:
                url = urllib.parse.urlsplit(
                    s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": k})
                )
                conn.request("PUT", f"{url.path}?{url.query}", body=b"x")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200, resp.status
        finally:
            conn.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [keys[i::4] for i in range(4)]))

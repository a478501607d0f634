"""OpenTelemetry tracing: a real gateway exports a span per S3 request over OTLP/HTTP to a receiver
run by this test (an http.server that decodes the protobuf with opentelemetry-proto)."""

from __future__ import annotations

import gzip
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, start_server

trace_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


class Receiver(http.server.ThreadingHTTPServer):
    """Collects every span POSTed to /v1/traces as (resource attributes, span name, attributes, span)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[dict[str, Any], str, dict[str, Any], Any]] = []
        self.lock = threading.Lock()
        self.content_types: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for(
        self, names: set[str], timeout: float = 20.0, status: int | None = None
    ) -> list[tuple[dict[str, Any], str, dict[str, Any], Any]]:
        """Spans received once every name in ``names`` has arrived (and, with ``status``, a span
        with that response status: spans come in export batches, so one name is not all of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.spans)
            seen = {name for _, name, _, _ in got}
            if names <= seen and (
                status is None or any(a.get("http.response.status_code") == status for _, _, a, _ in got)
            ):
                return got
            time.sleep(0.1)
        raise AssertionError(f"spans {names} not received; got {[n for _, n, _, _ in got]}")


def _value(v: Any) -> Any:
    field = v.WhichOneof("value")
    return getattr(v, field) if field else None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(body)
        with self.server.lock:
            self.server.content_types.add(self.headers.get("Content-Type", ""))
            for rs in req.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        attrs = {a.key: _value(a.value) for a in span.attributes}
                        self.server.spans.append((resource, span.name, attrs, span))
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # milliseconds between batch exports (default 5 s)


def test_spans_for_put_and_get_via_env(tmp_path: Path, receiver: Receiver) -> None:
    env = {**FAST_EXPORT, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    server = start_server(tmp_path / "data", env=env)
    try:
        s3 = server.client()
        bucket, key = f"trace-{uuid.uuid4().hex[:8]}", "secret/key-name.bin"
        s3.create_bucket(Bucket=bucket)
        put = s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 1234)
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == b"x" * 1234
        with pytest.raises(ClientError):
            s3.get_object(Bucket=bucket, Key="missing")
        spans = receiver.wait_for({"S3.CreateBucket", "S3.PutObject", "S3.GetObject"}, status=404)
    finally:
        server.stop()
    assert receiver.content_types == {"application/x-protobuf"}
    by_id = {attrs["aws.request_id"]: (res, name, attrs, span) for res, name, attrs, span in spans}
    res, name, attrs, span = by_id[put["ResponseMetadata"]["RequestId"]]
    assert name == "S3.PutObject" and res["service.name"] == "rs3gw"
    assert attrs["aws.s3.bucket"] == bucket and attrs["http.response.status_code"] == 200
    assert attrs["rpc.method"] == "PutObject" and attrs["http.request.method"] == "PUT"
    assert attrs["rs3gw.bytes_in"] == 1234
    assert span.kind == span.SPAN_KIND_SERVER and span.end_time_unix_nano >= span.start_time_unix_nano
    assert abs(span.start_time_unix_nano / 1e9 - time.time()) < 120
    _, name, attrs, _ = by_id[got["ResponseMetadata"]["RequestId"]]
    assert name == "S3.GetObject" and attrs["rs3gw.bytes_out"] == 1234
    missing = [a for _, n, a, _ in spans if n == "S3.GetObject" and a["http.response.status_code"] == 404]
    assert missing and missing[0]["error.type"] == "NoSuchKey"
    for _, _, attrs, _ in spans:  # object keys are user data: never on a span
        assert not any("key-name" in str(v) for v in attrs.values())


def test_tracing_table_in_config_file(tmp_path: Path, receiver: Receiver) -> None:
    config = tmp_path / "rs3gw.toml"
    config.write_text(f'[tracing]\nendpoint = "{receiver.url}"\nservice_name = "gw-under-test"\n')
    clean_env = {k: "" for k in os.environ if k.startswith("OTEL_EXPORTER_OTLP")}
    server = start_server(tmp_path / "data", "--config", str(config), env={**FAST_EXPORT, **clean_env})
    try:
        server.client().list_buckets()
        spans = receiver.wait_for({"S3.ListBuckets"})
    finally:
        server.stop()
    assert {res["service.name"] for res, _, _, _ in spans} == {"gw-under-test"}


def test_without_the_sdk_the_server_runs_and_says_why(tmp_path: Path, receiver: Receiver) -> None:
    """The SDK made unimportable for the server process (as on an install without the extra)."""
    hide = tmp_path / "hide-otel-sdk"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoSdk:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry.sdk' or name.startswith(('opentelemetry.sdk.', 'opentelemetry.exporter')):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _NoSdk())\n"
    )
    pythonpath = os.pathsep.join(p for p in (str(hide), os.environ.get("PYTHONPATH", "")) if p)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "PYTHONPATH": pythonpath}
    server: Server = start_server(tmp_path / "data", env=env)
    try:
        s3 = server.client()
        bucket = f"trace-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    finally:
        server.stop()
    log = server.log.read_text()
    assert "OpenTelemetry SDK is not installed" in log and "rs3gw[tracing]" in log
    time.sleep(0.5)
    assert receiver.spans == []

"""Two stateless `rs3gw serve` processes, each with its own data dir, sharing one PostgreSQL database
and one SeaweedFS bucket (`--backend s3`): the scale-out deployment the README describes.

Nothing is shared on local disk except `keys.json`, which the README says every gateway must have
(SSE-S3 keys and store-managed users' sealed secrets). Concurrent clients write through one gateway
and read through the other: read-after-write for new objects, overwrites, deletes and listings,
multipart with parts through both, and If-None-Match: * races with exactly one winner. Bodies are
self-describing (see test_pg_multi_gateway.body), so torn or mixed reads are detected.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_pg_multi_gateway import body, intact, parallel
from test_s3_backend_e2e import backend_flags, upstream_blobs, weed  # noqa: F401 - weed: a fixture

from conftest import Server, start_server
from pg_cluster import PgCluster
from seaweed import Seaweed

THREADS = 8
PREFIX = "scaleout"
# Log size of each gateway when the outage test breaks things on purpose: background workers log
# tracebacks while PostgreSQL or SeaweedFS is away, so only what came before must be clean.
CLEAN_LOG_UPTO: dict[str, int] = {}


@pytest.fixture(scope="module")
def gateways(
    pg_cluster: PgCluster,
    weed: Seaweed,  # noqa: F811 - the imported fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server]]:
    dsn = pg_cluster.create_database("gwsw")
    flags = ["--no-fsync", "--metadata", dsn, *backend_flags(weed, PREFIX)]
    a = start_server(tmp_path_factory.mktemp("gwa") / "data", *flags)
    try:
        # The first SSE-S3 write creates A's KEK file; B gets a copy of it, as the README says to.
        s3 = a.client()
        s3.create_bucket(Bucket="keyseed")
        s3.put_object(Bucket="keyseed", Key="k", Body=b"x", ServerSideEncryption="AES256")
        b_dir = tmp_path_factory.mktemp("gwb") / "data"
        b_dir.mkdir()
        shutil.copy2(a.data_dir / "keys.json", b_dir / "keys.json")
        b = start_server(b_dir, *flags)
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()
    for srv in (a, b):
        log = srv.log.read_text()[: CLEAN_LOG_UPTO.get(srv.endpoint)]
        assert "Traceback" not in log, log[-3000:]
        assert not (srv.data_dir / "blobs").exists()  # object data went to SeaweedFS only


@pytest.fixture(scope="module")
def clients(gateways: tuple[Server, Server]) -> tuple[Any, Any]:
    a, b = gateways
    return a.client(max_pool_connections=THREADS * 2), b.client(max_pool_connections=THREADS * 2)


@pytest.fixture
def shared_bucket(clients: tuple[Any, Any]) -> str:
    ca, cb = clients
    name = f"sw-{uuid.uuid4().hex[:12]}"
    ca.create_bucket(Bucket=name)
    cb.head_bucket(Bucket=name)
    return name


def test_read_after_write_overwrites_and_encryption(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients

    def worker(t: int) -> None:
        for i in range(8):
            writer, reader = (ca, cb) if (t + i) % 2 == 0 else (cb, ca)
            key = f"t{t}/new-{i}"
            data = body(key)
            extra = {"ServerSideEncryption": "AES256"} if i % 4 == 0 else {}
            etag = writer.put_object(Bucket=shared_bucket, Key=key, Body=data, **extra)["ETag"]
            got = reader.get_object(Bucket=shared_bucket, Key=key)
            assert got["ETag"] == etag and got["Body"].read() == data
            own = f"t{t}/own"
            data = body(f"{own}-{i}")
            writer.put_object(Bucket=shared_bucket, Key=own, Body=data)
            assert reader.get_object(Bucket=shared_bucket, Key=own)["Body"].read() == data

    parallel(worker)
    for c in (ca, cb):
        pages = c.get_paginator("list_objects_v2").paginate(Bucket=shared_bucket)
        assert len([o for p in pages for o in p.get("Contents", [])]) == THREADS * 9


def test_hot_key_overwrites_are_never_torn(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    key = "hot"
    ca.put_object(Bucket=shared_bucket, Key=key, Body=body("first"))
    written: set[bytes] = set()
    stop = threading.Event()
    reads = [0]
    lock = threading.Lock()

    def reader(c: Any) -> None:
        while not stop.is_set():
            got = c.get_object(Bucket=shared_bucket, Key=key)
            data = got["Body"].read()
            assert intact(data), "torn read"
            assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()
            with lock:
                reads[0] += 1

    def writer(t: int) -> None:
        c = (ca, cb)[t % 2]
        for i in range(10):
            data = body(f"w{t}-{i}", 1024 + 512 * (i % 4))
            with lock:
                written.add(data)
            c.put_object(Bucket=shared_bucket, Key=key, Body=data)

    with parallel_readers(reader, (ca, cb, ca, cb)) as done:
        try:
            parallel(writer, 4)
        finally:
            stop.set()
        done()
    assert reads[0] > 0
    final = ca.get_object(Bucket=shared_bucket, Key=key)["Body"].read()
    assert final in written and cb.get_object(Bucket=shared_bucket, Key=key)["Body"].read() == final


class parallel_readers:
    """Readers running while the body of the with-block writes; ``done()`` re-raises their failures."""

    def __init__(self, fn: Any, clients: tuple[Any, ...]) -> None:
        self.threads = [threading.Thread(target=self._run, args=(fn, c)) for c in clients]
        self.errors: list[BaseException] = []

    def _run(self, fn: Any, c: Any) -> None:
        try:
            fn(c)
        except BaseException as e:  # handed to the test thread by done()
            self.errors.append(e)

    def __enter__(self) -> Any:
        for t in self.threads:
            t.start()
        return self.done

    def done(self) -> None:
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]

    def __exit__(self, *exc: object) -> None:
        for t in self.threads:
            t.join()


def test_deletes_and_listings_cross_gateway(
    clients: tuple[Any, Any],
    shared_bucket: str,
    weed: Seaweed,  # noqa: F811
) -> None:
    ca, cb = clients
    kept: set[str] = set()
    lock = threading.Lock()

    def worker(t: int) -> None:
        writer, other = (ca, cb) if t % 2 == 0 else (cb, ca)
        for i in range(8):
            key = f"d/{t:02d}/{i:02d}"
            writer.put_object(Bucket=shared_bucket, Key=key, Body=body(key, 256))
            listed = other.list_objects_v2(Bucket=shared_bucket, Prefix=f"d/{t:02d}/")
            assert key in [o["Key"] for o in listed.get("Contents", [])]
            if i % 3 == 0:
                other.delete_object(Bucket=shared_bucket, Key=key)
                with pytest.raises(ClientError) as exc:
                    writer.head_object(Bucket=shared_bucket, Key=key)
                assert exc.value.response["Error"]["Code"] == "404"
                listed = writer.list_objects_v2(Bucket=shared_bucket, Prefix=f"d/{t:02d}/")
                assert key not in [o["Key"] for o in listed.get("Contents", [])]
            else:
                with lock:
                    kept.add(key)

    parallel(worker)
    for c in (ca, cb):
        pages = c.get_paginator("list_objects_v2").paginate(
            Bucket=shared_bucket, PaginationConfig={"PageSize": 7}
        )
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        assert keys == sorted(kept)
        for key in keys:  # nothing lost: every kept object's bytes are whole, through either gateway
            assert intact(c.get_object(Bucket=shared_bucket, Key=key)["Body"].read())
    assert upstream_blobs(weed, PREFIX)  # and they live in SeaweedFS


def test_if_none_match_create_race_has_one_winner(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    keys = [f"race-{i}" for i in range(5)]
    winners: dict[str, list[bytes]] = {k: [] for k in keys}
    lock = threading.Lock()

    def contender(t: int) -> None:
        c = (ca, cb)[t % 2]
        for key in keys:
            data = body(f"{key}-{t}")
            try:
                c.put_object(Bucket=shared_bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict")
                continue
            with lock:
                winners[key].append(data)

    parallel(contender)
    for key in keys:
        assert len(winners[key]) == 1, f"{key}: {len(winners[key])} winners"
        for c in (ca, cb):
            assert c.get_object(Bucket=shared_bucket, Key=key)["Body"].read() == winners[key][0]


def test_multipart_parts_through_both_gateways(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    up = ca.create_multipart_upload(Bucket=shared_bucket, Key="mp")["UploadId"]
    chunk = 5 * 1024 * 1024
    parts_data = [bytes([65 + n]) * chunk for n in range(2)] + [b"tail"]
    etags: dict[int, str] = {}

    def put_part(n: int) -> None:
        c = (ca, cb)[n % 2]
        etags[n + 1] = c.upload_part(
            Bucket=shared_bucket, Key="mp", UploadId=up, PartNumber=n + 1, Body=parts_data[n]
        )["ETag"]

    parallel(put_part, 3)
    assert [p["PartNumber"] for p in cb.list_parts(Bucket=shared_bucket, Key="mp", UploadId=up)["Parts"]] == [
        1,
        2,
        3,
    ]
    done = {"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]}
    results: list[str] = []

    def complete(t: int) -> None:
        c = (ca, cb)[t % 2]
        try:
            c.complete_multipart_upload(Bucket=shared_bucket, Key="mp", UploadId=up, MultipartUpload=done)
            results.append("ok")
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    parallel(complete, 4)
    assert results.count("ok") == 1 and set(results) <= {"ok", "NoSuchUpload"}, results
    whole = b"".join(parts_data)
    for c in (ca, cb):
        assert c.get_object(Bucket=shared_bucket, Key="mp")["Body"].read() == whole
        rng = c.get_object(Bucket=shared_bucket, Key="mp", Range=f"bytes={chunk - 3}-{chunk + 2}")
        assert rng["Body"].read() == b"AAABBB"


def _set_database_reachable(pg: PgCluster, database: str, reachable: bool) -> None:
    """The shared cluster cannot be stopped for one test; refusing connections to one database and
    ending its sessions is the same outage as far as a gateway can tell."""
    import psycopg

    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(reachable).lower()}')  # type: ignore[arg-type]
        if not reachable:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=%s", (database,)
            )


def _error(fn: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        fn()
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def test_outages_are_503_and_the_database_recovers(
    gateways: tuple[Server, Server],
    clients: tuple[Any, Any],
    shared_bucket: str,
    pg_cluster: PgCluster,
    weed: Seaweed,  # noqa: F811 - the imported fixture
) -> None:
    """Runs last: it stops this module's SeaweedFS."""
    ca, cb = clients
    data = body("outage")
    for srv in gateways:
        CLEAN_LOG_UPTO[srv.endpoint] = len(srv.log.read_text())
    ca.put_object(Bucket=shared_bucket, Key="o", Body=data)
    database = pg_cluster.databases[-1]  # the gateways' (created by the module fixture)
    assert database.startswith("gwsw_")
    _set_database_reachable(pg_cluster, database, False)
    try:
        # The gateway's pooled connection was cut: the next request answers 503 at once.
        assert _error(lambda: cb.get_object(Bucket=shared_bucket, Key="o")) == (503, "ServiceUnavailable")
    finally:
        _set_database_reachable(pg_cluster, database, True)
    deadline = time.monotonic() + 40
    while True:  # the pool reconnects by itself
        try:
            assert cb.get_object(Bucket=shared_bucket, Key="o")["Body"].read() == data
            break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ServiceUnavailable"
            assert time.monotonic() < deadline, "the gateway did not reconnect to PostgreSQL"
            time.sleep(0.2)
    weed.stop()
    assert _error(lambda: ca.get_object(Bucket=shared_bucket, Key="o")) == (503, "ServiceUnavailable")
    assert _error(lambda: cb.put_object(Bucket=shared_bucket, Key="p", Body=b"x")) == (
        503,
        "ServiceUnavailable",
    )

"""Two stateless `rs3gw serve` processes, each with its own data dir, sharing one PostgreSQL database
and one SeaweedFS bucket (`--backend s3`): the scale-out deployment the README describes.

Nothing is shared on local disk except `keys.json`, which the README says every gateway must have
(SSE-S3 keys and store-managed users' sealed secrets). Concurrent clients write through one gateway
and read through the other: read-after-write for new objects, overwrites, deletes and listings,
multipart with parts through both, and If-None-Match: * races with exactly one winner. Bodies are
self-describing (see multi_gateway_scenarios.body), so torn or mixed reads are detected.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from multi_gateway_scenarios import (
    THREADS,
    body,
    create_race,
    deletes_and_listings,
    hot_key_overwrites,
    multipart_from_both,
    read_after_write,
)
from test_s3_backend_e2e import backend_flags, upstream_blobs, weed  # noqa: F401 - weed: a fixture

from conftest import Server, start_server
from pg_cluster import PgCluster
from seaweed import Seaweed

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
    read_after_write(*clients, shared_bucket, rounds=8, sse_every=4)


def test_hot_key_overwrites_are_never_torn(clients: tuple[Any, Any], shared_bucket: str) -> None:
    hot_key_overwrites(*clients, shared_bucket, writes=10)


def test_deletes_and_listings_cross_gateway(
    clients: tuple[Any, Any],
    shared_bucket: str,
    weed: Seaweed,  # noqa: F811
) -> None:
    deletes_and_listings(*clients, shared_bucket, rounds=8)
    assert upstream_blobs(weed, PREFIX)  # and they live in SeaweedFS


def test_if_none_match_create_race_has_one_winner(clients: tuple[Any, Any], shared_bucket: str) -> None:
    create_race(
        *clients, shared_bucket, n_keys=5, loser_codes={"PreconditionFailed", "ConditionalRequestConflict"}
    )


def test_multipart_parts_through_both_gateways(clients: tuple[Any, Any], shared_bucket: str) -> None:
    multipart_from_both(*clients, shared_bucket)


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

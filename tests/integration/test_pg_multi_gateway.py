"""Two `rs3gw serve` processes sharing one PostgreSQL database and one data directory.

Clients write through one gateway and read through the other, concurrently: read-after-write for
new objects, overwrites, deletes and listings, no lost or torn objects, and If-None-Match: * create
races with exactly one winner. The scenarios live in multi_gateway_scenarios, shared with the
scale-out test over SeaweedFS (test_gateways_pg_seaweed).
"""

from __future__ import annotations

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

from conftest import Server, start_server
from pg_cluster import PgCluster


@pytest.fixture(scope="module")
def gateways(
    pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    dsn = pg_cluster.create_database("gw")
    base = tmp_path_factory.mktemp("gw")
    data = base / "data"
    data.mkdir()
    alias = base / "data-b"  # the same directory under a second name: each server its own log file
    alias.symlink_to(data)
    a = start_server(data, "--metadata", dsn)
    b = start_server(alias, "--metadata", dsn)
    yield a, b
    b.stop()
    a.stop()
    for srv in (a, b):
        assert "Traceback" not in srv.log.read_text(), srv.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def clients(gateways: tuple[Server, Server]) -> tuple[Any, Any]:
    a, b = gateways
    # botocore's response checksum validation stays on: the x-amz-checksum-* a GET returns must be
    # the current object's, which a stale metadata write (e.g. the access-count flush racing an
    # overwrite of a null version) once broke; update_object_meta's ``expect`` now refuses those.
    ca = a.client(max_pool_connections=THREADS * 2)
    cb = b.client(max_pool_connections=THREADS * 2)
    return ca, cb


@pytest.fixture
def shared_bucket(clients: tuple[Any, Any]) -> Iterator[str]:
    ca, cb = clients
    name = f"gw-{uuid.uuid4().hex[:12]}"
    ca.create_bucket(Bucket=name)
    # The bucket made through A exists for B at once.
    cb.head_bucket(Bucket=name)
    yield name


def test_read_after_write_new_objects_and_overwrites(clients: tuple[Any, Any], shared_bucket: str) -> None:
    read_after_write(*clients, shared_bucket, rounds=12)


def test_hot_key_overwrites_are_never_torn(clients: tuple[Any, Any], shared_bucket: str) -> None:
    hot_key_overwrites(*clients, shared_bucket, writes=15)


def test_deletes_and_listings_cross_gateway(clients: tuple[Any, Any], shared_bucket: str) -> None:
    deletes_and_listings(*clients, shared_bucket, rounds=10)


def test_if_none_match_create_race_has_one_winner(clients: tuple[Any, Any], shared_bucket: str) -> None:
    create_race(*clients, shared_bucket, n_keys=6, loser_codes={"PreconditionFailed"})


def test_multipart_completed_on_one_gateway_parts_from_both(
    clients: tuple[Any, Any], shared_bucket: str
) -> None:
    multipart_from_both(*clients, shared_bucket)


def test_second_gateway_sees_versioning_and_config(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    ca.put_bucket_versioning(Bucket=shared_bucket, VersioningConfiguration={"Status": "Enabled"})
    assert cb.get_bucket_versioning(Bucket=shared_bucket)["Status"] == "Enabled"
    vids = []
    for i in range(4):
        c = (ca, cb)[i % 2]
        vids.append(c.put_object(Bucket=shared_bucket, Key="v", Body=body(f"v{i}"))["VersionId"])
    listed = cb.list_object_versions(Bucket=shared_bucket, Prefix="v")["Versions"]
    assert [v["VersionId"] for v in listed] == list(reversed(vids))
    cb.delete_object(Bucket=shared_bucket, Key="v")
    with pytest.raises(ClientError):
        ca.get_object(Bucket=shared_bucket, Key="v")
    assert ca.get_object(Bucket=shared_bucket, Key="v", VersionId=vids[0])["Body"].read()[:32]

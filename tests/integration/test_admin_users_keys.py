"""Store-managed users and access keys: admin API and `rs3gw admin user|key`, against real servers.

Every secret a test sees is remembered, and the module ends by checking that none of them appears
in any server log or, in plaintext, in the metadata store: the ``meta.db`` file, or every table of
the PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server
from meta_access import postgres_database_bytes
from pg_cluster import PgCluster, metadata_args

SECRETS: list[str] = []  # every secret handed out in this module, checked against logs and stores
ACCESS_KEYS: list[str] = []  # their access keys: stored as they are, so a dump must show some
SERVERS: list[Server] = []
PRIMARY = (ACCESS_KEY, SECRET_KEY)


def admin(
    srv: Server, method: str, path: str, creds: tuple[str, str] = PRIMARY, body: bytes = b""
) -> tuple[int, Any]:
    url = f"{srv.endpoint}/_rs3gw/admin/{path}"
    sha = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body, headers={"x-amz-content-sha256": sha})
    SigV4Auth(Credentials(*creds), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=10) as resp:
            data = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        data, status = e.read(), e.code
    if data.startswith(b"{"):
        doc = json.loads(data)
        if isinstance(doc, dict) and "secret_key" in doc:
            SECRETS.append(doc["secret_key"])
            ACCESS_KEYS.append(doc["access_key"])
        return status, doc
    return status, data.decode()


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def new_key(srv: Server, user: str) -> tuple[str, str]:
    status, doc = admin(srv, "POST", f"users/{user}/keys")
    assert status == 201, doc
    return doc["access_key"], doc["secret_key"]


def denied_code(client: Any) -> str:
    with pytest.raises(ClientError) as info:
        client.list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return error_code(info.value)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("iam") / "data")
    SERVERS.append(server)
    yield server
    server.stop()


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    meta = metadata_args(data_dir, ())  # the same store the test server of data_dir uses
    if meta:
        env["RS3GW_METADATA"] = meta[1]
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", "admin", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def cli_json(data_dir: Path, *args: str) -> Any:
    proc = run_cli(data_dir, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    if isinstance(doc, dict) and "secret_key" in doc:
        SECRETS.append(doc["secret_key"])
        ACCESS_KEYS.append(doc["access_key"])
    return doc


def test_user_and_key_via_admin_api(srv: Server) -> None:
    name = f"alice-{uuid.uuid4().hex[:6]}"
    status, user = admin(srv, "PUT", f"users/{name}")
    assert status == 201 and user["name"] == name and user["enabled"] is True
    assert admin(srv, "PUT", f"users/{name}")[0] == 409
    ak, sk = new_key(srv, name)
    alice = srv.client(ak, sk)
    bucket = f"alice-{uuid.uuid4().hex[:8]}"
    alice.create_bucket(Bucket=bucket)
    alice.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert alice.get_object(Bucket=bucket, Key="k")["Body"].read() == b"hello"
    mine = alice.list_buckets()
    assert [b["Name"] for b in mine["Buckets"]] == [bucket]
    assert mine["Owner"]["DisplayName"] == name and mine["Owner"]["ID"] == user["canonical_id"]
    # Her buckets are invisible to others, and theirs to her.
    assert bucket not in [b["Name"] for b in srv.client().list_buckets()["Buckets"]]
    second = srv.client(USER2[1], USER2[2])
    with pytest.raises(ClientError) as info:
        second.get_object(Bucket=bucket, Key="k")
    assert error_code(info.value) == "AccessDenied"
    # Listings never carry a secret.
    status, keys = admin(srv, "GET", f"users/{name}/keys")
    assert status == 200 and [k["access_key"] for k in keys["keys"]] == [ak]
    assert "secret" not in json.dumps(keys)
    status, users = admin(srv, "GET", "users")
    assert {"name": name, "keys": 1}.items() <= next(u for u in users["users"] if u["name"] == name).items()


def test_disable_enable_delete_key_take_effect_at_once(srv: Server) -> None:
    name = f"bob-{uuid.uuid4().hex[:6]}"
    assert admin(srv, "PUT", f"users/{name}")[0] == 201
    ak, sk = new_key(srv, name)
    bob = srv.client(ak, sk)
    bob.list_buckets()
    status, doc = admin(srv, "POST", f"keys/{ak}/disable")
    assert status == 200 and doc["enabled"] is False
    assert denied_code(bob) == "InvalidAccessKeyId"
    assert admin(srv, "POST", f"keys/{ak}/enable")[0] == 200
    bob.list_buckets()
    # Disabling the user stops all of its keys; enabling brings them back.
    assert admin(srv, "POST", f"users/{name}/disable")[0] == 200
    assert denied_code(bob) == "InvalidAccessKeyId"
    assert admin(srv, "POST", f"users/{name}/enable")[0] == 200
    bob.list_buckets()
    assert admin(srv, "DELETE", f"keys/{ak}")[0] == 204
    assert denied_code(bob) == "InvalidAccessKeyId"
    status, doc = admin(srv, "GET", f"keys/{ak}")
    assert status == 404 and "NoSuchEntity" in doc
    assert admin(srv, "POST", f"keys/{ak}/enable")[0] == 404


def test_rotate_keeps_old_key_until_disabled(srv: Server) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    assert admin(srv, "PUT", f"users/{name}")[0] == 201
    old_ak, old_sk = new_key(srv, name)
    status, doc = admin(srv, "POST", f"keys/{old_ak}/rotate")
    assert status == 201 and doc["user"] == name and doc["access_key"] != old_ak
    new = srv.client(doc["access_key"], doc["secret_key"])
    old = srv.client(old_ak, old_sk)
    bucket = f"carol-{uuid.uuid4().hex[:8]}"
    new.create_bucket(Bucket=bucket)
    assert [b["Name"] for b in old.list_buckets()["Buckets"]] == [bucket]  # same user, same buckets
    assert admin(srv, "POST", f"keys/{old_ak}/disable")[0] == 200
    assert denied_code(old) == "InvalidAccessKeyId"
    assert [b["Name"] for b in new.list_buckets()["Buckets"]] == [bucket]
    # Deleting the user removes every key it has.
    assert admin(srv, "DELETE", f"users/{name}")[0] == 204
    assert denied_code(new) == "InvalidAccessKeyId"
    assert admin(srv, "GET", f"keys/{old_ak}")[0] == 404


def test_only_the_primary_account_manages_users(srv: Server) -> None:
    name = f"dave-{uuid.uuid4().hex[:6]}"
    assert admin(srv, "PUT", f"users/{name}")[0] == 201
    ak, sk = new_key(srv, name)
    for creds in ((USER2[1], USER2[2]), (ak, sk)):
        for method, path in (("GET", "users"), ("PUT", "users/mallory"), ("POST", f"users/{name}/keys")):
            status, body = admin(srv, method, path, creds)
            assert status == 403 and "AccessDenied" in body, (creds[0], method, path)
    assert all(u["name"] != "mallory" for u in admin(srv, "GET", "users")[1]["users"])


def test_bad_requests_get_errors_not_500(srv: Server) -> None:
    status, body = admin(srv, "PUT", "users/" + "a" * 65)  # IAM's names are 1-64 characters
    assert status == 400 and "InvalidArgument" in body
    status, body = admin(srv, "PUT", f"users/{USER2[0]}")  # a configured account's name
    assert status == 409 and "EntityAlreadyExists" in body
    assert admin(srv, "POST", "users/nobody-here/keys")[0] == 404
    assert admin(srv, "POST", "keys/NOSUCHKEY0000000000/rotate")[0] == 404
    assert admin(srv, "PATCH", "users")[0] == 405


def test_cli_on_stopped_server_then_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    name = "erin"
    assert cli_json(data, "user", "create", name)["name"] == name
    key = cli_json(data, "key", "create", name)
    assert [k["access_key"] for k in cli_json(data, "key", "list", "--user", name)] == [key["access_key"]]
    dup = run_cli(data, "user", "create", name)
    assert dup.returncode == 1 and "EntityAlreadyExists" in dup.stderr
    table = run_cli(data, "user", "list")  # the rich table
    assert table.returncode == 0 and name in table.stdout
    server = start_server(data, "--iam-refresh-interval", "1")
    SERVERS.append(server)
    try:
        erin = server.client(key["access_key"], key["secret_key"])
        erin.create_bucket(Bucket="erin-bucket")
        # A key made by the CLI while the server runs works at once (an unknown key reloads).
        rotated = cli_json(data, "key", "rotate-secret", key["access_key"])
        assert rotated["replaces"] == key["access_key"] and rotated["user"] == name
        fresh = server.client(rotated["access_key"], rotated["secret_key"])
        assert [b["Name"] for b in fresh.list_buckets()["Buckets"]] == ["erin-bucket"]
        # Disabled from another process: in force within the refresh interval (1 s here).
        cli_json(data, "key", "disable", key["access_key"])
        deadline = time.time() + 15
        while True:
            try:
                erin.list_buckets()
            except ClientError as e:
                assert error_code(e) == "InvalidAccessKeyId"
                break
            assert time.time() < deadline, "disabled key still accepted after 15 s"
            time.sleep(0.5)
        fresh.list_buckets()
        assert cli_json(data, "key", "delete", key["access_key"]) == {"deleted": key["access_key"]}
        assert cli_json(data, "user", "delete", name)["keys_deleted"] == [rotated["access_key"]]
    finally:
        server.stop()


def test_store_users_shared_by_gateways_on_postgresql(pg_cluster: PgCluster, tmp_path: Path) -> None:
    dsn = pg_cluster.create_database("iam")
    a = start_server(tmp_path / "a", "--metadata", dsn)
    SERVERS.append(a)
    b: Server | None = None
    try:
        assert admin(a, "PUT", "users/frank")[0] == 201
        new_key(a, "frank")  # makes a's key file (the rs3gw/iam key)
        # Both gateways must open each other's sealed secrets: they share the key file, as with SSE.
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "keys.json").write_bytes((tmp_path / "a" / "keys.json").read_bytes())
        b = start_server(tmp_path / "b", "--metadata", dsn, "--iam-refresh-interval", "1")
        SERVERS.append(b)
        ak, sk = new_key(a, "frank")
        b.client(ak, sk).list_buckets()  # made on a, works on b at once
        assert admin(a, "POST", f"keys/{ak}/disable")[0] == 200
        deadline = time.time() + 15
        while True:
            try:
                b.client(ak, sk).list_buckets()
            except ClientError as e:
                assert error_code(e) == "InvalidAccessKeyId"
                break
            assert time.time() < deadline
            time.sleep(0.5)
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_lifecycle_rules_apply_to_store_users_buckets(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--lifecycle-day-seconds", "0.05", "--lifecycle-interval", "0.1")
    SERVERS.append(server)
    try:
        assert admin(server, "PUT", "users/grace")[0] == 201
        grace = server.client(*new_key(server, "grace"))
        grace.create_bucket(Bucket="grace-tmp")
        grace.put_object(Bucket="grace-tmp", Key="scratch/a", Body=b"x")
        rule = {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": "scratch/"}, "Expiration": {"Days": 1}}
        grace.put_bucket_lifecycle_configuration(Bucket="grace-tmp", LifecycleConfiguration={"Rules": [rule]})
        deadline = time.time() + 10
        while grace.list_objects_v2(Bucket="grace-tmp").get("KeyCount"):
            assert time.time() < deadline, "the store user's object never expired"
            time.sleep(0.2)
    finally:
        server.stop()


def postgres_dsn(server: Server) -> str | None:
    """The PostgreSQL metadata URL a server was started with (``--metadata``), None for SQLite."""
    args = [str(a) for a in server.proc.args]  # type: ignore[union-attr]
    for flag, value in itertools.pairwise(args):
        if flag == "--metadata" and value.startswith(("postgresql://", "postgres://")):
            return value
    return None


def test_secrets_never_logged_nor_stored_in_plaintext() -> None:
    """Runs last in this module: every secret handed out above, against every log and store file,
    and, for servers on PostgreSQL, every value of every table of their database (the users and
    keys live there, not in a file of the data dir)."""
    assert len(SECRETS) >= 8
    databases: set[str] = set()
    for server in SERVERS:
        log = server.log.read_bytes()
        assert b"Traceback" not in log, log[-2000:]
        dsn = postgres_dsn(server)
        stores = list(server.data_dir.glob("meta.db*"))
        assert bool(stores) != bool(dsn), f"{server.data_dir}: meta.db {stores} and --metadata {dsn}"
        files = [p for p in server.data_dir.rglob("*") if p.is_file()]  # meta.db*, audit log, ...
        for secret in SECRETS:
            assert secret.encode() not in log, f"secret in {server.log}"
            for path in files:
                assert secret.encode() not in path.read_bytes(), f"plaintext secret in {path}"
        if dsn is not None:
            databases.add(dsn)
    if os.environ.get("RS3GW_TEST_METADATA"):
        assert len(databases) >= 2, databases  # every server here ran on PostgreSQL
    assert databases, "no server on PostgreSQL (test_store_users_shared_by_gateways_on_postgresql)"
    dumps = {dsn: postgres_database_bytes(dsn) for dsn in databases}
    # The dumps do reach the users and keys: access keys are stored as they are (their secrets
    # sealed), and the shared-gateways test's user is in its database.
    assert any(ak.encode() in dump for ak in ACCESS_KEYS for dump in dumps.values()), "no access key"
    assert any(b"frank" in dump for dump in dumps.values()), "store user frank in no database"
    for dsn, dump in dumps.items():
        for secret in SECRETS:
            assert secret.encode() not in dump, f"plaintext secret in PostgreSQL database {dsn}"

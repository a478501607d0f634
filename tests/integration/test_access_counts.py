"""GET counts live in the metadata store's ``object_access`` table, not in the version's metadata
document: over a real server (SQLite, or PostgreSQL with RS3GW_TEST_METADATA=postgresql).

The server flushes counts only when asked (its background interval is an hour): the storage
report flushes first, so each test decides exactly which GETs a flush sees. Rows are read
straight from the store (``meta_access``), so a count attached to the wrong version shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admin_http import admin_get
from conftest import Server, start_server
from meta_access import meta_db

SLOW_FLUSH = "[tiers]\ninterval = 3600\n"  # nothing flushes behind a test's back


def _start(base: Path) -> Server:
    cfg = base / "rs3gw.toml"
    cfg.write_text(SLOW_FLUSH)
    return start_server(base / "data", "--config", str(cfg))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = _start(tmp_path_factory.mktemp("access"))
    yield s
    s.stop()


def flush_report(srv: Server) -> dict[str, Any]:
    """Flush buffered GETs (the report does that first) and return the report's buckets."""
    status, rep = admin_get(srv, "storage/report")
    assert status == 200, rep
    return dict(rep["buckets"])


def rows(srv: Server, bucket: str, key: str | None = None) -> dict[tuple[str, str], int]:
    """(key, version id) -> GETs recorded in the table."""
    sql = "SELECT key, version_id, gets FROM object_access WHERE bucket=?"
    args: tuple[Any, ...] = (bucket,)
    if key is not None:
        sql, args = sql + " AND key=?", (bucket, key.encode())
    with meta_db(srv.data_dir, read_only=True) as db:
        return {(bytes(k).decode(), str(v)): int(n) for k, v, n in db.execute(sql, args)}


def docs(srv: Server, bucket: str) -> dict[tuple[str, str], str]:
    """(key, version id) -> the stored metadata text of every version in ``bucket``."""
    with meta_db(srv.data_dir, read_only=True) as db:
        got = db.execute("SELECT key, version_id, meta FROM objects WHERE bucket=?", (bucket,))
    return {(bytes(k).decode(), str(v)): str(m) for k, v, m in got}


def get(s3: Any, bucket: str, key: str, times: int = 1, **kw: Any) -> None:
    for _ in range(times):
        s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def test_a_replacing_version_never_inherits_counts(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="inherit")
    s3.put_object(Bucket="inherit", Key="src", Body=b"source")
    s3.put_object(Bucket="inherit", Key="k", Body=b"one")
    get(s3, "inherit", "k", 3)
    flush_report(srv)
    assert rows(srv, "inherit", "k") == {("k", "null"): 3}

    s3.put_object(Bucket="inherit", Key="k", Body=b"two")  # unversioned overwrite of "null"
    assert rows(srv, "inherit", "k") == {}
    get(s3, "inherit", "k")
    flush_report(srv)
    assert rows(srv, "inherit", "k") == {("k", "null"): 1}

    s3.copy_object(Bucket="inherit", Key="k", CopySource={"Bucket": "inherit", "Key": "src"})
    assert rows(srv, "inherit", "k") == {}
    get(s3, "inherit", "k", 2)
    flush_report(srv)
    assert rows(srv, "inherit", "k") == {("k", "null"): 2}

    up = s3.create_multipart_upload(Bucket="inherit", Key="k")["UploadId"]
    etag = s3.upload_part(Bucket="inherit", Key="k", UploadId=up, PartNumber=1, Body=b"p" * 100)["ETag"]
    s3.complete_multipart_upload(
        Bucket="inherit", Key="k", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )
    assert rows(srv, "inherit", "k") == {}
    assert flush_report(srv)["inherit"]["access"] == {"objects_accessed": 0, "gets": 0}


def test_gets_of_a_replaced_version_are_dropped(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="race")
    s3.put_object(Bucket="race", Key="k", Body=b"old")
    get(s3, "race", "k", 4)  # buffered in memory ...
    s3.put_object(Bucket="race", Key="k", Body=b"new")  # ... when the version they read is replaced
    assert flush_report(srv)["race"]["access"] == {"objects_accessed": 0, "gets": 0}
    assert rows(srv, "race") == {}
    get(s3, "race", "k")
    assert flush_report(srv)["race"]["access"] == {"objects_accessed": 1, "gets": 1}

    # A version deleted between the GET and the flush leaves nothing either.
    s3.create_bucket(Bucket="race-v")
    s3.put_bucket_versioning(Bucket="race-v", VersioningConfiguration={"Status": "Enabled"})
    vid = s3.put_object(Bucket="race-v", Key="k", Body=b"v1")["VersionId"]
    get(s3, "race-v", "k", 2, VersionId=vid)
    s3.delete_object(Bucket="race-v", Key="k", VersionId=vid)
    flush_report(srv)
    assert rows(srv, "race-v") == {}


def test_deletes_leave_no_access_rows(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="del-v")
    s3.put_bucket_versioning(Bucket="del-v", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="del-v", Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket="del-v", Key="k", Body=b"2")["VersionId"]
    get(s3, "del-v", "k", 1, VersionId=v1)
    get(s3, "del-v", "k", 2, VersionId=v2)
    flush_report(srv)
    assert rows(srv, "del-v") == {("k", v1): 1, ("k", v2): 2}
    s3.delete_object(Bucket="del-v", Key="k", VersionId=v1)
    assert rows(srv, "del-v") == {("k", v2): 2}
    marker = s3.delete_object(Bucket="del-v", Key="k")["VersionId"]  # v2 is kept, and so are its counts
    assert rows(srv, "del-v") == {("k", v2): 2}
    s3.delete_object(Bucket="del-v", Key="k", VersionId=v2)
    s3.delete_object(Bucket="del-v", Key="k", VersionId=marker)
    assert rows(srv, "del-v") == {}
    s3.delete_bucket(Bucket="del-v")

    s3.create_bucket(Bucket="del-u")
    for key in ("a", "b"):
        s3.put_object(Bucket="del-u", Key=key, Body=b"x")
        get(s3, "del-u", key)
    flush_report(srv)
    assert set(rows(srv, "del-u")) == {("a", "null"), ("b", "null")}
    s3.delete_object(Bucket="del-u", Key="a")
    s3.delete_objects(Bucket="del-u", Delete={"Objects": [{"Key": "b"}]})
    s3.delete_bucket(Bucket="del-u")
    assert rows(srv, "del-u") == {}


def test_gets_leave_metadata_documents_and_listings_unchanged(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="list")
    keys = [f"obj/{i:03d}" for i in range(20)]
    for key in keys:
        s3.put_object(Bucket="list", Key=key, Body=b"d" * 50, Metadata={"m": "1"})
    s3.put_object(Bucket="list", Key="it", Body=b"i" * 50, StorageClass="INTELLIGENT_TIERING")

    def listing() -> list[dict[str, Any]]:
        out = s3.list_objects_v2(Bucket="list")["Contents"]
        return [{k: o[k] for k in ("Key", "ETag", "Size", "LastModified", "StorageClass")} for o in out]

    before, listed = docs(srv, "list"), listing()
    for key in [*keys, "it"]:
        get(s3, "list", key, 2)
        s3.head_object(Bucket="list", Key=key)
    rep = flush_report(srv)
    assert rep["list"]["access"] == {"objects_accessed": 21, "gets": 42}
    assert rows(srv, "list") == {(k, "null"): 2 for k in [*keys, "it"]}
    # Byte for byte the same documents (a FREQUENT INTELLIGENT_TIERING one included), so every
    # version of a listing still shares one parsed document.
    assert docs(srv, "list") == before
    assert len({before[(k, "null")] for k in keys}) == 1
    assert listing() == listed


def test_counts_in_older_documents_survive_the_upgrade(tmp_path: Path) -> None:
    srv = _start(tmp_path)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="old")
        s3.put_object(Bucket="old", Key="k", Body=b"x" * 10)
        s3.put_object(Bucket="old", Key="idle", Body=b"y" * 10)
    finally:
        srv.stop()
    # What an older rs3gw left: counts inside the document, and no row.
    with meta_db(srv.data_dir) as db:
        (meta,) = db.execute("SELECT meta FROM objects WHERE bucket=? AND key=?", ("old", b"k"))[0]
        doc = json.loads(meta)
        doc["x"] = {**doc.get("x", {}), "access-last": repr(1.0e9), "access-count": "5"}
        db.execute("UPDATE objects SET meta=? WHERE bucket=? AND key=?", (json.dumps(doc), "old", b"k"))
    srv = start_server(srv.data_dir, "--config", str(tmp_path / "rs3gw.toml"))
    try:
        assert flush_report(srv)["old"]["access"] == {"objects_accessed": 1, "gets": 5}
        get(srv.client(), "old", "k", 2)
        assert flush_report(srv)["old"]["access"] == {"objects_accessed": 1, "gets": 7}
        assert rows(srv, "old") == {("k", "null"): 2}
    finally:
        srv.stop()

"""Object versioning through boto3: bucket states, version ids, the null version, delete markers,
reads/copies/deletes by version, DeleteObjects with versions, paginated ListObjectVersions, blob GC."""

from __future__ import annotations

import hashlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from backend_matrix import stored_blobs
from conftest import Server, cleanup_bucket, start_server

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def hdrs(resp: dict[str, Any]) -> dict[str, str]:
    return dict(resp["ResponseMetadata"]["HTTPHeaders"])


def set_state(s3: Any, bucket: str, status: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def versions(s3: Any, bucket: str, prefix: str = "") -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) in the reply's document order, which boto3's
    parse loses by splitting versions and delete markers into two lists."""
    raw: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        raw.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", keep)
    root = ET.fromstring(raw[0])
    return [
        (
            el.findtext(f"{NS}Key") or "",
            el.findtext(f"{NS}VersionId") or "",
            el.findtext(f"{NS}IsLatest") == "true",
            el.tag == f"{NS}DeleteMarker",
        )
        for el in root
        if el.tag in (f"{NS}Version", f"{NS}DeleteMarker")
    ]


def body(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return data


# -- bucket versioning configuration -------------------------------------------------------------


def test_get_put_bucket_versioning(s3: Any, bucket: str) -> None:
    got = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in got and "MFADelete" not in got
    set_state(s3, bucket, "Enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    set_state(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"}
    )
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_put_bucket_versioning_errors(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        set_state(s3, bucket, "Disabled")
    assert err(e) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={})
    assert err(e) == ("IllegalVersioningConfigurationException", 400)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
        )
    assert err(e) == ("AccessDenied", 403)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)  # nothing changed
    with pytest.raises(ClientError) as e:
        set_state(s3, f"nope-{uuid.uuid4().hex[:8]}", "Enabled")
    assert err(e) == ("NoSuchBucket", 404)


def test_malformed_versioning_body(server: Server, bucket: str) -> None:
    s3 = server.client()

    def broken(request: Any, **_: Any) -> None:
        request.data = b"<VersioningConfiguration><Status>Enabled</Status"
        for name in [
            h
            for h in request.headers
            if h.lower().startswith(("content-md5", "x-amz-checksum", "x-amz-sdk-checksum"))
        ]:
            del request.headers[name]

    s3.meta.events.register("before-sign.s3.PutBucketVersioning", broken)
    with pytest.raises(ClientError) as e:
        set_state(s3, bucket, "Enabled")
    assert err(e) == ("MalformedXML", 400)


# -- version ids and the null version ------------------------------------------------------------


def test_never_versioned_has_no_version_headers(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert "VersionId" not in put
    assert "x-amz-version-id" not in hdrs(s3.head_object(Bucket=bucket, Key="k"))
    assert "x-amz-version-id" not in hdrs(s3.delete_object(Bucket=bucket, Key="k"))
    assert versions(s3, bucket) == []


def test_enabled_unique_version_ids_and_reads(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    vids = [s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode())["VersionId"] for i in range(5)]
    assert len(set(vids)) == 5 and "null" not in vids
    assert versions(s3, bucket) == [("k", v, i == 0, False) for i, v in enumerate(reversed(vids))]
    for i, vid in enumerate(vids):
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=vid)
        assert got["Body"].read() == f"v{i}".encode() and got["VersionId"] == vid
        assert s3.head_object(Bucket=bucket, Key="k", VersionId=vid)["ContentLength"] == 2
    latest = s3.get_object(Bucket=bucket, Key="k")
    assert latest["VersionId"] == vids[-1] and latest["Body"].read() == b"v4"
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == vids[-1]


def test_unknown_and_malformed_version_ids(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    unknown = vid[:-4] + ("0000" if not vid.endswith("0000") else "1111")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=unknown)
    assert err(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=unknown)
    assert err(e)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not a/valid id!")
    assert err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="")
    assert err(e) == ("InvalidArgument", 400)
    assert "empty string" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")  # no null version exists
    assert err(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", VersionId="bad/id")
    assert err(e) == ("InvalidArgument", 400)
    # Deleting a well-formed version that does not exist succeeds, as on AWS.
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=unknown)
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert body(s3, bucket, "k") == b"x"


def test_null_version_survives_enabling(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    set_state(s3, bucket, "Enabled")
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"new")["VersionId"]
    assert versions(s3, bucket) == [("k", vid, True, False), ("k", "null", False, False)]
    assert body(s3, bucket, "k", VersionId="null") == b"old"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"old" and got["VersionId"] == "null"


def test_suspended_overwrite_replaces_only_null(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-1")
    set_state(s3, bucket, "Enabled")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    set_state(s3, bucket, "Suspended")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"null-2")
    assert put["VersionId"] == "null"
    assert versions(s3, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-3")
    assert versions(s3, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"null-3" and got["VersionId"] == "null"
    assert body(s3, bucket, "k", VersionId=v1) == b"v1"


def test_suspended_delete_makes_null_marker(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    set_state(s3, bucket, "Suspended")
    s3.put_object(Bucket=bucket, Key="k", Body=b"null")
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    assert versions(s3, bucket) == [("k", "null", True, True), ("k", v1, False, False)]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(e) == ("NoSuchKey", 404)
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")  # removing the marker
    assert versions(s3, bucket) == [("k", v1, True, False)]
    assert body(s3, bucket, "k") == b"v1"


# -- delete markers ------------------------------------------------------------------------------


def test_delete_marker_then_delete_marker_restores(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"data")["VersionId"]
    d = s3.delete_object(Bucket=bucket, Key="k")
    h = hdrs(d)
    assert h["x-amz-delete-marker"] == "true" and h["x-amz-version-id"] == d["VersionId"] != v1
    marker = d["VersionId"]
    assert versions(s3, bucket) == [("k", marker, True, True), ("k", v1, False, False)]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert err(e) == ("NoSuchKey", 404)
    rh = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert rh["x-amz-delete-marker"] == "true" and rh["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert err(e)[1] == 404
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert err(e) == ("MethodNotAllowed", 405)
    rh = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert rh["x-amz-delete-marker"] == "true" and "last-modified" in rh
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    assert err(e)[1] == 405
    assert body(s3, bucket, "k", VersionId=v1) == b"data"  # older versions stay readable
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert gone["DeleteMarker"] is True and gone["VersionId"] == marker
    assert body(s3, bucket, "k") == b"data"
    assert versions(s3, bucket) == [("k", v1, True, False)]


def test_delete_latest_version_promotes_previous(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"3")["VersionId"]
    d = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)  # a middle one
    assert d["VersionId"] == v2 and "DeleteMarker" not in d
    assert versions(s3, bucket) == [("k", v3, True, False), ("k", v1, False, False)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v3)
    assert body(s3, bucket, "k") == b"1"
    assert versions(s3, bucket) == [("k", v1, True, False)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert versions(s3, bucket) == []


def test_two_markers_stack(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    m1 = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    m2 = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    assert m1 != m2
    kinds = [(v, latest, dm) for _, v, latest, dm in versions(s3, bucket)]
    assert kinds[:2] == [(m2, True, True), (m1, False, True)]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(ClientError) as e:  # versions and markers still count
        s3.delete_bucket(Bucket=bucket)
    assert err(e) == ("BucketNotEmpty", 409)


# -- copies and multipart ------------------------------------------------------------------------


def test_copy_from_version(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    res = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1}
    )
    assert res["CopySourceVersionId"] == v1
    assert res["VersionId"] not in (v1, "null")
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"first" and got["VersionId"] == res["VersionId"]
    latest = s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"})
    assert body(s3, bucket, "dst2") == b"second" and latest["CopySourceVersionId"] != v1
    # Restoring an old version by copying it over the key itself is legal with a version id.
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert body(s3, bucket, "src") == b"first"
    assert len([v for v in versions(s3, bucket, "src") if v[0] == "src"]) == 3
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1[:-3] + "abc"}
        )
    assert err(e)[1] == 404
    marker = s3.delete_object(Bucket=bucket, Key="src")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"})
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src", "VersionId": marker}
        )
    assert err(e) == ("InvalidRequest", 400)


def test_multipart_versions_and_part_copy(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    part = b"a" * (5 * 1024 * 1024)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=part)["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"small")
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    p1 = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1},
    )
    assert p1["CopySourceVersionId"] == v1
    latest_src = s3.list_object_versions(Bucket=bucket, Prefix="src")["Versions"][0]["VersionId"]
    p3 = s3.upload_part_copy(
        Bucket=bucket, Key="mp", UploadId=up, PartNumber=3, CopySource={"Bucket": bucket, "Key": "src"}
    )
    assert p3["CopySourceVersionId"] == latest_src
    p2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=b"tail")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": p2["ETag"]},
            ]
        },
    )
    assert done["VersionId"] not in (None, "null")
    got = s3.get_object(Bucket=bucket, Key="mp", VersionId=done["VersionId"])
    assert got["Body"].read() == part + b"tail" and got["VersionId"] == done["VersionId"]


# -- DeleteObjects -------------------------------------------------------------------------------


def test_delete_objects_with_versions(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"a2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": a1}, {"Key": "b"}]})
    deleted = {d["Key"]: d for d in res["Deleted"]}
    assert deleted["a"]["VersionId"] == a1 and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    marker = deleted["b"]["DeleteMarkerVersionId"]
    assert [v for v in versions(s3, bucket) if v[0] == "a"] == [("a", a2, True, False)]
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b", "VersionId": marker}]})
    d = res["Deleted"][0]
    assert d["VersionId"] == marker and d["DeleteMarker"] is True and d["DeleteMarkerVersionId"] == marker
    assert body(s3, bucket, "b") == b"b"
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": "bad/id"}]})
    assert res["Errors"][0]["Key"] == "a" and res["Errors"][0]["Code"] == "InvalidArgument"


# -- ListObjectVersions pagination ---------------------------------------------------------------


def test_paginate_30_versions_of_one_key(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    set_state(s3, bucket, "Enabled")
    vids = [s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())["VersionId"] for i in range(30)]
    z = s3.put_object(Bucket=bucket, Key="z", Body=b"z")["VersionId"]
    seen: list[tuple[str, str, bool]] = []
    kw: dict[str, Any] = {}
    pages = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=7, **kw)
        pages += 1
        got = page.get("Versions", [])
        assert len(got) == (7 if page["IsTruncated"] else len(got))
        seen += [(v["Key"], v["VersionId"], v["IsLatest"]) for v in got]
        if not page["IsTruncated"]:
            break
        assert page["NextVersionIdMarker"] == got[-1]["VersionId"]
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert pages == 5  # 32 versions / 7
    expected = [("a", "null", True)] + [("k", v, i == 0) for i, v in enumerate(reversed(vids))]
    assert seen == [*expected, ("z", z, True)]


def test_versions_prefix_delimiter_and_key_marker(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    for key in ("d/1", "d/2", "e", "f"):
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    page = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d/"]
    assert [v["Key"] for v in page["Versions"]] == ["e"] * 3 + ["f"] * 3
    page = s3.list_object_versions(Bucket=bucket, Prefix="d/", MaxKeys=4)
    assert [v["Key"] for v in page["Versions"]] == ["d/1"] * 3 + ["d/2"] and page["IsTruncated"]
    page = s3.list_object_versions(Bucket=bucket, KeyMarker="e")  # keys strictly after the marker
    assert {v["Key"] for v in page["Versions"]} == {"f"}
    # A prefix page boundary: MaxKeys counts the common prefix once.
    page = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d/"] and len(page["Versions"]) == 1
    nxt = s3.list_object_versions(
        Bucket=bucket,
        Delimiter="/",
        KeyMarker=page["NextKeyMarker"],
        VersionIdMarker=page["NextVersionIdMarker"],
    )
    assert [v["Key"] for v in nxt["Versions"]] == ["e", "e", "f", "f", "f"]


# -- data lifetime: every version owns its blobs -------------------------------------------------


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("versioning") / "data")
    yield srv
    srv.stop()


def blob_count(data_dir: Path) -> int:
    return len(stored_blobs(data_dir))  # files on disk, or keys upstream (RS3GW_TEST_BACKEND=s3)


def settled_blob_count(data_dir: Path) -> int:
    """The count once earlier tests' background deletions have finished (stable for 0.5 s)."""
    deadline = time.monotonic() + 10
    last, since = blob_count(data_dir), time.monotonic()
    while time.monotonic() - since < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
        if (n := blob_count(data_dir)) != last:
            last, since = n, time.monotonic()
    return last


def wait_blobs(data_dir: Path, expected: int) -> int:
    deadline = time.monotonic() + 10
    while (n := blob_count(data_dir)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def test_blobs_freed_only_with_last_version(own_server: Server) -> None:
    s3 = own_server.client()
    bucket = f"blobs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    data = own_server.data_dir
    base = settled_blob_count(data)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"null-version")
        set_state(s3, bucket, "Enabled")
        vids = [s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode())["VersionId"] for i in range(3)]
        assert wait_blobs(data, base + 4) == base + 4  # overwrites freed nothing
        for i, vid in enumerate(vids):
            assert body(s3, bucket, "k", VersionId=vid) == f"v{i}".encode()
        marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
        assert wait_blobs(data, base + 4) == base + 4  # a marker frees nothing
        s3.delete_object(Bucket=bucket, Key="k", VersionId=vids[1])
        assert wait_blobs(data, base + 3) == base + 3  # exactly that version's blob
        assert body(s3, bucket, "k", VersionId=vids[0]) == b"v0"
        assert body(s3, bucket, "k", VersionId=vids[2]) == b"v2"
        set_state(s3, bucket, "Suspended")
        s3.put_object(Bucket=bucket, Key="k", Body=b"null-2")  # replaces the null version's data
        assert wait_blobs(data, base + 3) == base + 3
        assert body(s3, bucket, "k") == b"null-2"
        s3.delete_object(Bucket=bucket, Key="k")  # null marker replaces the null version
        assert wait_blobs(data, base + 2) == base + 2
        for vid in [vids[0], vids[2], marker, "null"]:
            s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
        assert wait_blobs(data, base) == base
        assert s3.list_object_versions(Bucket=bucket).get("Versions") is None
    finally:
        cleanup_bucket(s3, bucket)


def test_versions_keep_distinct_content(own_server: Server) -> None:
    s3 = own_server.client()
    bucket = f"content-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        set_state(s3, bucket, "Enabled")
        payloads = [hashlib.sha256(str(i).encode()).digest() * 1000 for i in range(4)]
        vids = [s3.put_object(Bucket=bucket, Key="k", Body=p)["VersionId"] for p in payloads]
        for vid, p in zip(vids, payloads, strict=True):
            assert body(s3, bucket, "k", VersionId=vid) == p
    finally:
        cleanup_bucket(s3, bucket)


def test_marker_on_missing_key_and_null_marker_paging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"null")
    set_state(s3, bucket, "Enabled")
    newer = [s3.put_object(Bucket=bucket, Key="k", Body=b"v")["VersionId"] for _ in range(2)]
    d = s3.delete_object(Bucket=bucket, Key="never-written")  # S3 adds a marker all the same
    assert d["DeleteMarker"] is True and d["VersionId"] != "null"
    assert versions(s3, bucket, "never") == [("never-written", d["VersionId"], True, True)]
    seen: list[str] = []
    kw: dict[str, Any] = {"Prefix": "k"}
    while True:  # one entry per page, through a page boundary right after the null version
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1, **kw)
        seen += [v["VersionId"] for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            break
        kw.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    assert seen == [*reversed(newer), "null"]
    page = s3.list_object_versions(Bucket=bucket, Prefix="k", KeyMarker="k", VersionIdMarker=newer[0])
    assert [v["VersionId"] for v in page["Versions"]] == ["null"]
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, KeyMarker="k", VersionIdMarker="bad/marker")
    assert err(e) == ("InvalidArgument", 400)


def test_version_headers_after_suspending(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    set_state(s3, bucket, "Suspended")
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"] == "null"
    copy = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"})
    assert copy["VersionId"] == "null" and copy["CopySourceVersionId"] == "null"
    assert versions(s3, bucket) == [("c", "null", True, False), ("k", "null", True, False)]


def test_paginate_while_deleting_what_was_listed(s3: Any, bucket: str) -> None:
    """Cleanup loops delete each page before asking for the next, so the version-id-marker names a
    version that is gone; the listing must still resume where it was, skipping nothing."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"null")
    set_state(s3, bucket, "Enabled")
    for i in range(12):
        s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())
        if i % 5 == 0:
            s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="m", Body=b"m")
    total = len(versions(s3, bucket))
    deleted = 0
    kw: dict[str, Any] = {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=4, **kw)
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            deleted += 1
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert deleted == total == 17 and versions(s3, bucket) == []


def test_concurrent_puts_each_get_a_version(s3: Any, bucket: str) -> None:
    set_state(s3, bucket, "Enabled")
    with ThreadPoolExecutor(8) as pool:
        vids = list(
            pool.map(
                lambda i: s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())["VersionId"], range(20)
            )
        )
    listed = versions(s3, bucket)
    assert len(set(vids)) == 20 and {v for _, v, _, _ in listed} == set(vids)
    assert [latest for _, _, latest, _ in listed] == [True] + [False] * 19
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == listed[0][1]


def test_multipart_version_frees_all_its_parts(own_server: Server) -> None:
    s3 = own_server.client()
    bucket = f"mpblobs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    data = own_server.data_dir
    try:
        set_state(s3, bucket, "Enabled")
        base = settled_blob_count(data)
        up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        etags = [
            s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=n, Body=b)["ETag"]
            for n, b in ((1, b"p" * (5 * 1024 * 1024)), (2, b"tail"))
        ]
        parts = [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]
        vid = s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": parts}
        )["VersionId"]
        s3.put_object(Bucket=bucket, Key="mp", Body=b"newer")
        assert wait_blobs(data, base + 3) == base + 3
        s3.delete_object(Bucket=bucket, Key="mp", VersionId=vid)
        assert wait_blobs(data, base + 1) == base + 1
        assert body(s3, bucket, "mp") == b"newer"
    finally:
        cleanup_bucket(s3, bucket)

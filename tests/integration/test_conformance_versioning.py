"""Versioning behaviours that ceph/s3-tests (boto3 flavour, test_s3.py ``test_versioning_*`` and
``test_versioned_*``) checks, re-stated against a real ``rs3gw serve`` with real boto3 clients.

tests/integration/test_versioning.py already covers bucket states, version ids, delete markers
and paging; this file holds the s3-tests cases it does not state directly (suspended sequences,
special key names, multipart and copies of versions, DeleteObjects markers, concurrency, ACLs per
version) and a seeded model check of ListObjectVersions ordering and paging. Where s3-tests
expects RGW-only behaviour the test follows AWS and says so. The suite's own code is not used.
"""

from __future__ import annotations

import random
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import cleanup_bucket

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
Entry = tuple[str, str, bool, bool]  # key, version id, is latest, is delete marker


def _err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    resp = exc.value.response
    return str(resp["Error"]["Code"]), int(resp["ResponseMetadata"]["HTTPStatusCode"])


def _headers(resp: dict[str, Any]) -> dict[str, str]:
    return dict(resp["ResponseMetadata"]["HTTPHeaders"])


def _enable(s3: Any, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def _body(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return data


def _page(s3: Any, bucket: str, **kw: Any) -> tuple[dict[str, Any], list[Entry]]:
    """One ListObjectVersions page and its entries in document order (boto3's parse splits
    versions and markers into two lists, losing the interleaving that S3 defines)."""
    raw: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        raw.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        parsed = s3.list_object_versions(Bucket=bucket, **kw)
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", keep)
    root = ET.fromstring(raw[0])
    entries = [
        (
            urllib.parse.unquote(el.findtext(f"{NS}Key") or ""),  # boto3 asked for EncodingType=url
            el.findtext(f"{NS}VersionId") or "",
            el.findtext(f"{NS}IsLatest") == "true",
            el.tag == f"{NS}DeleteMarker",
        )
        for el in root
        if el.tag in (f"{NS}Version", f"{NS}DeleteMarker")
    ]
    return parsed, entries


def _all(s3: Any, bucket: str, max_keys: int = 1000, delimiter: str = "") -> tuple[list[Entry], list[str]]:
    """Every entry and common prefix, following NextKeyMarker/NextVersionIdMarker page by page."""
    entries: list[Entry] = []
    prefixes: list[str] = []
    kw: dict[str, Any] = {"MaxKeys": max_keys}
    if delimiter:
        kw["Delimiter"] = delimiter
    for _ in range(1000):
        page, got = _page(s3, bucket, **kw)
        entries += got
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            return entries, prefixes
        kw["KeyMarker"] = page["NextKeyMarker"]
        kw.pop("VersionIdMarker", None)
        if page.get("NextVersionIdMarker"):
            kw["VersionIdMarker"] = page["NextVersionIdMarker"]
    raise AssertionError("listing did not end")


def _mpu(s3: Any, bucket: str, key: str, parts: list[bytes], **kw: Any) -> dict[str, Any]:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]
    done = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=p)["ETag"],
        }
        for n, p in enumerate(parts, start=1)
    ]
    res: dict[str, Any] = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": done}
    )
    return res


# -- null versions and suspended buckets ---------------------------------------------------------


def test_plain_null_version_removal_leaves_nothing(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_obj_plain_null_version_removal, ..._overwrite_suspended."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain")
    _enable(s3, bucket)
    _enable(s3, bucket, "Suspended")
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended")  # replaces the plain null version
    page, entries = _page(s3, bucket)
    assert entries == [("k", "null", True, False)]
    assert _body(s3, bucket, "k") == b"suspended"
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert _err(e) == ("NoSuchKey", 404)
    page, entries = _page(s3, bucket)
    assert entries == [] and "Versions" not in page and "DeleteMarkers" not in page


def test_suspend_versions_sequence(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_obj_suspend_versions. Suspended deletes and overwrites touch only
    the null version; versions made while enabled stay, in order, and re-enabling stacks on top."""
    _enable(s3, bucket)
    vids = [s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode())["VersionId"] for i in range(3)]
    older = [("k", v, False, False) for v in reversed(vids)]
    _enable(s3, bucket, "Suspended")
    first = s3.delete_object(Bucket=bucket, Key="k")
    second = s3.delete_object(Bucket=bucket, Key="k")  # replaces the null marker, adds none
    assert first["VersionId"] == second["VersionId"] == "null" and second["DeleteMarker"] is True
    assert _page(s3, bucket)[1] == [("k", "null", True, True), *older]
    s3.put_object(Bucket=bucket, Key="k", Body=b"null content 1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"null content 2")
    assert _page(s3, bucket)[1] == [("k", "null", True, False), *older]
    _enable(s3, bucket)
    v4 = s3.put_object(Bucket=bucket, Key="k", Body=b"v4")["VersionId"]
    assert _page(s3, bucket)[1] == [("k", v4, True, False), ("k", "null", False, False), *older]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v4)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"null content 2" and got["VersionId"] == "null"
    for vid in ["null", *vids]:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    assert _page(s3, bucket)[1] == []


def test_suspended_copy_of_null_version(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_obj_suspended_copy (CopySource with VersionId=null)."""
    _enable(s3, bucket, "Suspended")
    s3.put_object(Bucket=bucket, Key="testobj1", Body=b"content")
    res = s3.copy_object(
        Bucket=bucket, Key="testobj2", CopySource={"Bucket": bucket, "Key": "testobj1", "VersionId": "null"}
    )
    assert res["CopySourceVersionId"] == "null" and res["VersionId"] == "null"
    assert _body(s3, bucket, "testobj2") == b"content"


def test_upload_return_version_id_by_state(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_bucket_atomic_upload_return_version_id and
    test_versioning_bucket_multipart_upload_return_version_id. s3-tests expects no version id in
    a suspended bucket (RGW); AWS reports the null version there ("Working with objects in a
    versioning-suspended bucket"), which is what this follows."""
    assert "VersionId" not in s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    assert "VersionId" not in _mpu(s3, bucket, "m", [b"x"])
    _enable(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="a", Body=b"x")["VersionId"] == "null"
    assert _mpu(s3, bucket, "m", [b"x"])["VersionId"] == "null"
    _enable(s3, bucket)
    put = s3.put_object(Bucket=bucket, Key="a", Body=b"x")["VersionId"]
    mpu = _mpu(s3, bucket, "m", [b"x"])["VersionId"]
    assert "null" not in (put, mpu)
    assert [e[1] for e in _page(s3, bucket)[1]] == [put, "null", mpu, "null"]


# -- names, multipart and copies -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["_testobj", "_", ":", " ", "a+b%20c?d&e=f", "é/ü"])
def test_versions_of_special_names(s3: Any, bucket: str, key: str) -> None:
    """s3-tests: test_versioning_obj_create_versions_remove_special_names (plus URL-hostile keys)."""
    _enable(s3, bucket)
    vids = [s3.put_object(Bucket=bucket, Key=key, Body=f"v{i}".encode())["VersionId"] for i in range(3)]
    assert _page(s3, bucket)[1] == [(key, v, i == 0, False) for i, v in enumerate(reversed(vids))]
    for i, vid in enumerate(vids):
        assert _body(s3, bucket, key, VersionId=vid) == f"v{i}".encode()
    for vid in (vids[1], vids[2], vids[0]):  # middle, latest, last
        s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
    assert _page(s3, bucket)[1] == []


def test_overwrite_with_multipart_keeps_each_version(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_obj_create_overwrite_multipart; each version keeps its metadata."""
    _enable(s3, bucket)
    vids = [
        _mpu(s3, bucket, "mp", [f"part-{i}".encode()], Metadata={"n": str(i)}, ContentType=f"text/x{i}")[
            "VersionId"
        ]
        for i in range(3)
    ]
    assert [e[1] for e in _page(s3, bucket)[1]] == list(reversed(vids))
    for i, vid in enumerate(vids):
        got = s3.get_object(Bucket=bucket, Key="mp", VersionId=vid)
        assert got["Body"].read() == f"part-{i}".encode()
        assert got["Metadata"] == {"n": str(i)} and got["ContentType"] == f"text/x{i}"
        assert got["ETag"].endswith('-1"')


def test_copy_versions_to_other_buckets(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_copy_obj_version, test_object_copy_versioned_bucket. A copy into
    a never-versioned bucket has no version id of its own but names the source version."""
    _enable(s3, bucket)
    vids = [s3.put_object(Bucket=bucket, Key="k", Body=f"c{i}".encode())["VersionId"] for i in range(3)]
    other = f"copy-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=other)
    try:
        for i, vid in enumerate(vids):
            res = s3.copy_object(
                Bucket=other, Key=f"key_{i}", CopySource={"Bucket": bucket, "Key": "k", "VersionId": vid}
            )
            assert "VersionId" not in res and res["CopySourceVersionId"] == vid
            assert _body(s3, other, f"key_{i}") == f"c{i}".encode()
        latest = s3.copy_object(Bucket=other, Key="new_key", CopySource={"Bucket": bucket, "Key": "k"})
        assert latest["CopySourceVersionId"] == vids[-1] and _body(s3, other, "new_key") == b"c2"
        back = s3.copy_object(Bucket=bucket, Key="back", CopySource={"Bucket": other, "Key": "key_0"})
        assert "CopySourceVersionId" not in back and back["VersionId"] not in (None, "null")
    finally:
        cleanup_bucket(s3, other)


def test_copy_version_of_url_hostile_key(s3: Any, bucket: str) -> None:
    """s3-tests: test_object_copy_versioned_url_encoding ('?' in the source key)."""
    _enable(s3, bucket)
    vid = s3.put_object(Bucket=bucket, Key="foo?bar", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="foo?bar", Body=b"second")
    res = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "foo?bar", "VersionId": vid}
    )
    assert res["CopySourceVersionId"] == vid and _body(s3, bucket, "dst") == b"first"
    res = s3.copy_object(
        Bucket=bucket, Key="dst2", CopySource=f"{bucket}/foo?bar?versionId={vid}"
    )  # boto3 quotes the key
    assert res["CopySourceVersionId"] == vid and _body(s3, bucket, "dst2") == b"first"


def test_copy_multipart_version(s3: Any, bucket: str) -> None:
    """s3-tests: test_object_copy_versioning_multipart_upload: size, metadata, type survive."""
    _enable(s3, bucket)
    part = b"a" * (5 * 1024 * 1024)
    vid = _mpu(s3, bucket, "mp", [part, b"tail"], Metadata={"foo": "bar"}, ContentType="text/bla")[
        "VersionId"
    ]
    s3.put_object(Bucket=bucket, Key="mp", Body=b"newer")
    res = s3.copy_object(
        Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp", "VersionId": vid}
    )
    assert res["CopySourceVersionId"] == vid
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["ContentLength"] == len(part) + 4 and got["Metadata"] == {"foo": "bar"}
    assert got["ContentType"] == "text/bla" and got["Body"].read()[-4:] == b"tail"


# -- DeleteObjects and concurrency ---------------------------------------------------------------


def test_multi_delete_creates_marker(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_multi_object_delete_with_marker_create, via DeleteObjects: a key
    that never existed gets a marker, reported as DeleteMarker/DeleteMarkerVersionId."""
    _enable(s3, bucket)
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "key"}]})
    d = res["Deleted"][0]
    assert d["Key"] == "key" and d["DeleteMarker"] is True and "VersionId" not in d
    assert _page(s3, bucket)[1] == [("key", d["DeleteMarkerVersionId"], True, True)]


def test_multi_delete_idempotent_and_concurrent(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioning_multi_object_delete (again: still succeeds),
    test_versioning_multi_object_delete_with_marker, test_versioning_concurrent_multi_object_delete."""
    _enable(s3, bucket)
    objs = [
        {"Key": k, "VersionId": s3.put_object(Bucket=bucket, Key=k, Body=b"x")["VersionId"]}
        for k in ("a", "b", "c")
        for _ in range(3)
    ]
    marker = s3.delete_object(Bucket=bucket, Key="a")["VersionId"]
    objs.append({"Key": "a", "VersionId": marker})
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: s3.delete_objects(Bucket=bucket, Delete={"Objects": objs}), range(4))
        )
    for res in results:
        assert "Errors" not in res and len(res["Deleted"]) == len(objs)
    page, entries = _page(s3, bucket)
    assert entries == [] and "Versions" not in page and "DeleteMarkers" not in page


def test_concurrent_create_and_remove(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioned_concurrent_object_create_concurrent_remove and
    test_versioned_concurrent_object_create_and_remove."""
    _enable(s3, bucket)
    for _ in range(3):
        with ThreadPoolExecutor(5) as pool:
            list(
                pool.map(
                    lambda i: s3.put_object(Bucket=bucket, Key="myobj", Body=f"data {i}".encode()), range(5)
                )
            )
        listed = s3.list_object_versions(Bucket=bucket)["Versions"]
        assert len(listed) == 5 and [v["IsLatest"] for v in listed] == [True] + [False] * 4
        with ThreadPoolExecutor(5) as pool:
            list(
                pool.map(
                    lambda v: s3.delete_object(Bucket=bucket, Key="myobj", VersionId=v["VersionId"]), listed
                )
            )
        assert "Versions" not in s3.list_object_versions(Bucket=bucket)

    def churn(i: int) -> None:
        s3.put_object(Bucket=bucket, Key="myobj", Body=f"data {i}".encode())
        for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key="myobj", VersionId=v["VersionId"])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(churn, range(9)))
    for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key="myobj", VersionId=v["VersionId"])
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


@pytest.mark.parametrize("state", ["Suspended", None])
def test_concurrent_null_writes_leave_one_null_version(s3: Any, bucket: str, state: str | None) -> None:
    """Concurrent writes without versioning (or suspended): each replaces the null version, so
    exactly one null entry remains, latest, above the versions made while enabled."""
    if state:
        _enable(s3, bucket)
        kept = s3.put_object(Bucket=bucket, Key="k", Body=b"enabled")["VersionId"]
        _enable(s3, bucket, state)

    def work(i: int) -> None:
        if state and i % 3 == 0:
            s3.delete_object(Bucket=bucket, Key="k")  # a null marker also replaces the null version
        else:
            s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(24)))
    entries = _page(s3, bucket)[1]
    assert [(k, v, latest) for k, v, latest, _ in entries][:1] == [("k", "null", True)]
    assert entries[1:] == ([("k", kept, False, False)] if state else [])


# -- listing -------------------------------------------------------------------------------------


def test_list_return_data_versioning(s3: Any, bucket: str) -> None:
    """s3-tests: test_bucket_list_return_data_versioning, test_versioning_obj_list_marker: each
    entry's ETag, Size, Owner, VersionId match the version; keys in order, newest first."""
    _enable(s3, bucket)
    vids = {
        k: [s3.put_object(Bucket=bucket, Key=k, Body=k.encode() * (i + 1))["VersionId"] for i in range(3)]
        for k in ("testobj", "testobj-1")
    }
    marker = s3.delete_object(Bucket=bucket, Key="testobj-1")["VersionId"]
    page, entries = _page(s3, bucket)
    assert entries == [
        *[("testobj", v, i == 0, False) for i, v in enumerate(reversed(vids["testobj"]))],
        ("testobj-1", marker, True, True),
        *[("testobj-1", v, False, False) for v in reversed(vids["testobj-1"])],
    ]
    owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"]
    for v in page["Versions"]:
        head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        assert (v["ETag"], v["Size"]) == (head["ETag"], head["ContentLength"])
        assert v["LastModified"].replace(microsecond=0) == head["LastModified"]
        assert v["Owner"] == owner and v["StorageClass"] == "STANDARD"
    dm = page["DeleteMarkers"][0]
    assert dm["Owner"] == owner and "ETag" not in dm and "Size" not in dm


def test_head_by_version_of_marker_carries_marker_headers(s3: Any, bucket: str) -> None:
    """The GetObject/HeadObject pages: a marker named by id answers 405 with x-amz-delete-marker,
    its x-amz-version-id and Last-Modified; HEAD has no body, so the headers are all it gets."""
    _enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    h = _headers(e.value.response)
    assert _err(e)[1] == 405 and h["x-amz-delete-marker"] == "true" and h["x-amz-version-id"] == marker
    assert "last-modified" in h
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    h = _headers(e.value.response)
    assert _err(e)[1] == 404 and h["x-amz-delete-marker"] == "true" and h["x-amz-version-id"] == marker


KEYS = ["a", "b/1", "b/2", "c", "d/x/1"]


@pytest.mark.parametrize("seed", range(4))
def test_listing_matches_a_model(s3: Any, bucket: str, seed: int) -> None:
    """A seeded random mix of state changes, puts, deletes and version deletes on a few keys,
    checked against a model of S3's rules: ListObjectVersions (whole, paged at several sizes, and
    with a delimiter) lists keys in order, each key newest first, markers in place, one latest;
    GET and ListObjectsV2 agree. Covers the ordering s3-tests checks piecemeal."""
    rnd = random.Random(seed)
    state: str | None = None
    model: dict[str, list[tuple[str, bool, bytes]]] = {k: [] for k in KEYS}  # newest first
    for step in range(100):
        op, key = rnd.random(), rnd.choice(KEYS)
        if op < 0.06:
            state = rnd.choice(["Enabled", "Suspended"])
            _enable(s3, bucket, state)
        elif op < 0.45:
            data = str(step).encode()
            vid = s3.put_object(Bucket=bucket, Key=key, Body=data).get("VersionId", "null")
            model[key] = [v for v in model[key] if v[0] != "null" or state == "Enabled"]
            model[key].insert(0, (vid, False, data))
        elif op < 0.65:
            res = s3.delete_object(Bucket=bucket, Key=key)
            model[key] = [v for v in model[key] if v[0] != "null" or state == "Enabled"]
            if state is not None:
                model[key].insert(0, (res["VersionId"], True, b""))
        elif op < 0.85 and model[key]:
            vid = rnd.choice(model[key])[0]
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
            model[key] = [v for v in model[key] if v[0] != vid]
        else:
            live = model[key][:1] if model[key] and not model[key][0][1] else []
            if live:
                assert _body(s3, bucket, key) == live[0][2], step
            else:
                with pytest.raises(ClientError) as e:
                    s3.get_object(Bucket=bucket, Key=key)
                assert _err(e) == ("NoSuchKey", 404), step
        if step % 25 != 24:
            continue
        expected = [(k, v[0], i == 0, v[1]) for k in sorted(KEYS) for i, v in enumerate(model[k])]
        for size in (1, 2, 3, 1000):
            assert _all(s3, bucket, size)[0] == expected, (step, size)
        top = [e for e in expected if "/" not in e[0]]
        prefixes = sorted({e[0].split("/")[0] + "/" for e in expected if "/" in e[0]})
        for size in (1, 2, 1000):
            assert _all(s3, bucket, size, "/") == (top, prefixes), (step, size)
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert listed == [k for k in sorted(KEYS) if model[k] and not model[k][0][1]], step


# -- ACLs per version ----------------------------------------------------------------------------


def test_acl_per_version(s3: Any, bucket: str) -> None:
    """s3-tests: test_versioned_object_acl, test_versioned_object_acl_no_version_specified."""
    _enable(s3, bucket)
    vids = [s3.put_object(Bucket=bucket, Key="xyz", Body=str(i).encode())["VersionId"] for i in range(3)]
    default = s3.get_object_acl(Bucket=bucket, Key="xyz", VersionId=vids[1])
    assert [g["Permission"] for g in default["Grants"]] == ["FULL_CONTROL"]
    s3.put_object_acl(Bucket=bucket, Key="xyz", VersionId=vids[1], ACL="public-read")
    grants = s3.get_object_acl(Bucket=bucket, Key="xyz", VersionId=vids[1])["Grants"]
    assert sorted(g["Permission"] for g in grants) == ["FULL_CONTROL", "READ"]
    assert len(s3.get_object_acl(Bucket=bucket, Key="xyz")["Grants"]) == 1  # latest untouched
    s3.put_object_acl(Bucket=bucket, Key="xyz", ACL="public-read")  # no id: the latest version
    assert len(s3.get_object_acl(Bucket=bucket, Key="xyz", VersionId=vids[2])["Grants"]) == 2
    assert len(s3.get_object_acl(Bucket=bucket, Key="xyz", VersionId=vids[0])["Grants"]) == 1
    s3.put_object(Bucket=bucket, Key="xyz", Body=b"new")  # a new version starts private
    assert len(s3.get_object_acl(Bucket=bucket, Key="xyz")["Grants"]) == 1


def test_acl_version_validation_and_current_marker(s3: Any, bucket: str) -> None:
    """Version-id validation and delete markers for ?acl as for the other object subresources
    (and as AWS-compatible servers answer GetObjectAcl: InvalidArgument; NoSuchKey when the
    current version is a marker, MethodNotAllowed when the marker is named by id)."""
    _enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="bad/id")
    assert _err(e) == ("InvalidArgument", 400)  # the reference behaviour, in the same server
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="k", VersionId="bad/id")
    assert _err(e) == ("InvalidArgument", 400)
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="k")
    assert _err(e) == ("NoSuchKey", 404)
    assert _headers(e.value.response).get("x-amz-delete-marker") == "true"
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="k", VersionId=marker)
    assert _err(e) == ("MethodNotAllowed", 405)
    assert _headers(e.value.response).get("x-amz-version-id") == marker

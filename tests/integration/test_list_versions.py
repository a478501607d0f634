"""ListObjectVersions (never-versioned and versioned buckets), null-version deletes, through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, put_fast, start_server

KEYS = ["a", "a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "z", "é/x"]  # UTF-8 byte order


def put_many(s3: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    put_many(s3, bucket, KEYS)
    return bucket


def entries(page: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        + [(p["Prefix"], "") for p in page.get("CommonPrefixes", [])],
        key=lambda e: e[0].encode(),
    )


def test_never_versioned_lists_null_versions(s3: Any, filled: str) -> None:
    owner = s3.list_buckets()["Owner"]
    res = s3.list_object_versions(Bucket=filled)
    assert [v["Key"] for v in res["Versions"]] == KEYS
    for v in res["Versions"]:
        assert v["VersionId"] == "null" and v["IsLatest"] is True
        assert v["Owner"] == owner and v["Size"] == len(v["Key"].encode())
        assert v["ETag"].startswith('"') and v["StorageClass"] == "STANDARD"
    assert "DeleteMarkers" not in res and res["IsTruncated"] is False
    assert "NextKeyMarker" not in res and "NextVersionIdMarker" not in res
    assert s3.get_bucket_versioning(Bucket=filled).get("Status") is None
    assert "MFADelete" not in s3.get_bucket_versioning(Bucket=filled)


def test_prefix_delimiter_max_keys(s3: Any, filled: str) -> None:
    res = s3.list_object_versions(Bucket=filled, Delimiter="/")
    assert entries(res) == [("a", "null"), ("a/", ""), ("b", "null"), ("c/", ""), ("z", "null"), ("é/", "")]
    assert res["Delimiter"] == "/"
    res = s3.list_object_versions(Bucket=filled, Prefix="a/", Delimiter="/")
    assert entries(res) == [("a/1", "null"), ("a/2", "null"), ("a/b/", "")]
    assert res["Prefix"] == "a/"
    res = s3.list_object_versions(Bucket=filled, MaxKeys=2)
    assert entries(res) == [("a", "null"), ("a/1", "null")] and res["MaxKeys"] == 2
    assert res["IsTruncated"] is True
    assert res["NextKeyMarker"] == "a/1" and res["NextVersionIdMarker"] == "null"
    res = s3.list_object_versions(Bucket=filled, KeyMarker="a/1", VersionIdMarker="null", MaxKeys=2)
    assert res["KeyMarker"] == "a/1" and res["VersionIdMarker"] == "null"
    assert entries(res) == [("a/2", "null"), ("a/b/3", "null")]
    res = s3.list_object_versions(Bucket=filled, KeyMarker="b")
    assert [v["Key"] for v in res["Versions"]] == ["c/1", "c/2", "z", "é/x"]
    res = s3.list_object_versions(Bucket=filled, Delimiter="/", MaxKeys=2, KeyMarker="a")
    assert entries(res) == [("a/", ""), ("b", "null")]
    assert res["NextKeyMarker"] == "b" and res["NextVersionIdMarker"] == "null"
    res = s3.list_object_versions(Bucket=filled, Delimiter="/", MaxKeys=1, KeyMarker="a")
    assert res["NextKeyMarker"] == "a/" and "NextVersionIdMarker" not in res
    assert s3.list_object_versions(Bucket=filled, MaxKeys=0).get("Versions") is None


def test_bad_markers(s3: Any, filled: str) -> None:
    for kw in ({"KeyMarker": "a", "VersionIdMarker": "no-such-version"}, {"VersionIdMarker": "null"}):
        with pytest.raises(ClientError) as exc:
            s3.list_object_versions(Bucket=filled, **kw)
        assert exc.value.response["Error"]["Code"] == "InvalidArgument"


def test_delete_null_version(s3: Any, filled: str) -> None:
    res = s3.delete_object(Bucket=filled, Key="a", VersionId="null")
    assert res["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=filled, Key="a")
    assert exc.value.response["Error"]["Code"] == "404"
    s3.delete_object(Bucket=filled, Key="b", BypassGovernanceRetention=True)
    res = s3.delete_objects(
        Bucket=filled,
        Delete={"Objects": [{"Key": "c/1", "VersionId": "null"}, {"Key": "c/2"}]},
        BypassGovernanceRetention=True,
    )
    assert sorted(d["Key"] for d in res["Deleted"]) == ["c/1", "c/2"] and "Errors" not in res
    s3.delete_object(Bucket=filled, Key="z", VersionId="null", BypassGovernanceRetention=True)
    left = s3.list_object_versions(Bucket=filled)
    assert [v["Key"] for v in left["Versions"]] == ["a/1", "a/2", "a/b/3", "é/x"]
    assert "DeleteMarkers" not in left
    assert s3.get_bucket_versioning(Bucket=filled).get("Status") is None


def test_versioned_bucket_versions_and_markers(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"0")  # a null version from before versioning
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"22")["VersionId"]
    dm = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    s3.put_object(Bucket=bucket, Key="j", Body=b"j")
    res = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in res["Versions"]] == [
        ("j", res["Versions"][0]["VersionId"], True),
        ("k", v2, False),
        ("k", v1, False),
        ("k", "null", False),
    ]
    assert [(d["Key"], d["VersionId"], d["IsLatest"]) for d in res["DeleteMarkers"]] == [("k", dm, True)]
    assert res["DeleteMarkers"][0]["Owner"] == s3.list_buckets()["Owner"]
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1}
    ):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    assert seen == [("j", res["Versions"][0]["VersionId"]), ("k", dm), ("k", v2), ("k", v1), ("k", "null")]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("versions-fast") / "data", "--no-fsync")
    yield srv
    srv.stop()


def test_paginate_2500_keys(fast: Server) -> None:
    s3 = fast.client()
    s3.create_bucket(Bucket="many")
    keys = [f"p{d:02d}/k{i:03d}" for d in range(25) for i in range(100)]
    put_fast(fast, "many", keys)
    got: list[str] = []
    pages = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="many"):
        pages += 1
        got += [v["Key"] for v in page.get("Versions", [])]
        assert all(v["VersionId"] == "null" and v["IsLatest"] for v in page.get("Versions", []))
    assert got == keys and pages == 3
    prefixes: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket="many", Delimiter="/", PaginationConfig={"PageSize": 4}
    ):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert prefixes == [f"p{d:02d}/" for d in range(25)]
    got = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket="many", Prefix="p03/", PaginationConfig={"PageSize": 30}
    ):
        got += [v["Key"] for v in page.get("Versions", [])]
    assert got == [f"p03/k{i:03d}" for i in range(100)]

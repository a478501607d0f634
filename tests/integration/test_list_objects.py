"""ListObjects (v1) and ListObjectsV2 through boto3 against a real server."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, cleanup_bucket, put_fast, start_server

KEYS = [
    "a",
    "a/",
    "a/b",
    "a/b/c",
    "a/c",
    "a.txt",
    "a0",
    "b/x",
    "b/y/z",
    "c",
    "dir with space/f",
    "é/1",
    "日本/2",
    "z\U0001f600",
    "ctl\x01key",
    "line\nbreak",
    "tab\tkey",
    "amp&<lt>",
]


def utf8_sorted(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode())


def put_many(s3: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))


@pytest.fixture(scope="module")
def keyed(server: Server) -> Iterator[str]:
    s3 = server.client()
    name = f"list-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    put_many(s3, name, KEYS)
    yield name
    cleanup_bucket(s3, name)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own without fsync: thousands of small PUTs in seconds, thrown away after."""
    srv = start_server(tmp_path_factory.mktemp("list-fast") / "data", "--no-fsync")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def big(fast: Server) -> str:
    """2,500 keys: 48 "directories" of 50 and 100 top-level keys."""
    name = "big"
    fast.client().create_bucket(Bucket=name)
    keys = [f"d{d:02d}/k{i:03d}" for d in range(48) for i in range(50)] + [f"top{i:03d}" for i in range(100)]
    put_fast(fast, name, keys)
    return name


@pytest.fixture
def fs3(fast: Server) -> Any:
    return fast.client()


def all_v2(s3: Any, bucket: str, **kw: Any) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


def test_v2_all_keys_in_utf8_order(s3: Any, keyed: str) -> None:
    res = s3.list_objects_v2(Bucket=keyed)
    assert [o["Key"] for o in res["Contents"]] == utf8_sorted(KEYS)
    assert res["KeyCount"] == len(KEYS)
    assert res["IsTruncated"] is False
    o = res["Contents"][0]
    assert o["Size"] == 1 and o["ETag"] == '"9dd4e461268c8034f5c8564e155c67a6"'
    assert o["StorageClass"] == "STANDARD" and "Owner" not in o


def test_v2_prefix_and_delimiter(s3: Any, keyed: str) -> None:
    res = s3.list_objects_v2(Bucket=keyed, Delimiter="/")
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == utf8_sorted(
        ["a/", "b/", "dir with space/", "é/", "日本/"]
    )
    assert [o["Key"] for o in res["Contents"]] == utf8_sorted(
        ["a", "a.txt", "a0", "c", "z\U0001f600", "ctl\x01key", "line\nbreak", "tab\tkey", "amp&<lt>"]
    )
    assert res["KeyCount"] == 14 and res["Delimiter"] == "/"
    res = s3.list_objects_v2(Bucket=keyed, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["a/", "a/b", "a/c"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/b/"]
    assert res["Prefix"] == "a/"
    res = s3.list_objects_v2(Bucket=keyed, Prefix="b", Delimiter="y")
    assert [o["Key"] for o in res["Contents"]] == ["b/x"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["b/y"]
    assert s3.list_objects_v2(Bucket=keyed, Prefix="nothing")["KeyCount"] == 0


def test_v2_max_keys_and_tokens(s3: Any, keyed: str) -> None:
    res = s3.list_objects_v2(Bucket=keyed, MaxKeys=0)
    assert res["KeyCount"] == 0 and "Contents" not in res and res["IsTruncated"] is False
    res = s3.list_objects_v2(Bucket=keyed, MaxKeys=3, Delimiter="/")
    assert res["IsTruncated"] is True and res["KeyCount"] == 3 and res["MaxKeys"] == 3
    res2 = s3.list_objects_v2(
        Bucket=keyed, MaxKeys=100, Delimiter="/", ContinuationToken=res["NextContinuationToken"]
    )
    assert res2["ContinuationToken"] == res["NextContinuationToken"]
    assert res2["KeyCount"] == 11 and res2["IsTruncated"] is False and "NextContinuationToken" not in res2
    res = s3.list_objects_v2(Bucket=keyed, StartAfter="b/x")
    assert res["StartAfter"] == "b/x"
    assert [o["Key"] for o in res["Contents"]] == [k for k in utf8_sorted(KEYS) if k.encode() > b"b/x"]
    res = s3.list_objects_v2(Bucket=keyed, MaxKeys=5000)
    assert res["KeyCount"] == len(KEYS)


def test_v2_token_wins_over_start_after(s3: Any, keyed: str) -> None:
    first = s3.list_objects_v2(Bucket=keyed, MaxKeys=2)
    res = s3.list_objects_v2(
        Bucket=keyed, StartAfter="zzzz", ContinuationToken=first["NextContinuationToken"], MaxKeys=1
    )
    assert res["Contents"][0]["Key"] == utf8_sorted(KEYS)[2]


@pytest.mark.parametrize("token", ["!!!not-base64!!!", "AAAA", "////"])
def test_v2_invalid_continuation_token(s3: Any, keyed: str, token: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=keyed, ContinuationToken=token)
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_v2_fetch_owner(s3: Any, keyed: str) -> None:
    owner = s3.list_buckets()["Owner"]
    res = s3.list_objects_v2(Bucket=keyed, FetchOwner=True, MaxKeys=1)
    assert res["Contents"][0]["Owner"] == owner
    assert owner["DisplayName"] and len(owner["ID"]) == 64


def test_encoding_type_url_raw(server: Server, s3: Any, keyed: str) -> None:
    """Without boto3's automatic decoding: the wire carries %-encoded keys, XML stays parseable."""
    import xml.etree.ElementTree as ET

    raw: dict[str, bytes] = {}

    def grab(http_response: Any, **_: Any) -> None:
        raw["body"] = http_response.content

    s3.meta.events.register("after-call.s3.ListObjectsV2", grab)
    s3.list_objects_v2(Bucket=keyed, Prefix="ctl")
    s3.meta.events.unregister("after-call.s3.ListObjectsV2", grab)
    doc = ET.fromstring(raw["body"])
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    assert doc.findtext(f"{ns}EncodingType") == "url"
    assert doc.findtext(f"{ns}Contents/{ns}Key") == "ctl%01key"
    assert urllib.parse.unquote("ctl%01key") == "ctl\x01key"


def test_control_and_unicode_keys_round_trip(s3: Any, keyed: str) -> None:
    """boto3 asks for encoding-type=url and decodes; every odd key must come back exactly."""
    keys, _ = all_v2(s3, keyed, PaginationConfig={"PageSize": 2})
    assert keys == utf8_sorted(KEYS)
    res = s3.list_objects(Bucket=keyed, Prefix="line\n")
    assert [o["Key"] for o in res["Contents"]] == ["line\nbreak"]
    # AWS url-encodes v1's Prefix too, but botocore decodes it only for v2 (botocore's quirk)
    assert res["Prefix"] == "line%0A"
    res = s3.list_objects_v2(Bucket=keyed, Prefix="dir with", Delimiter=" ")
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["dir with "]


def test_v1_basics(s3: Any, keyed: str) -> None:
    owner = s3.list_buckets()["Owner"]
    res = s3.list_objects(Bucket=keyed)
    assert [o["Key"] for o in res["Contents"]] == utf8_sorted(KEYS)
    assert res["Contents"][0]["Owner"] == owner  # v1 always reports the owner
    assert res["IsTruncated"] is False and "NextMarker" not in res
    res = s3.list_objects(Bucket=keyed, MaxKeys=2)
    assert res["IsTruncated"] is True and "NextMarker" not in res  # only with a delimiter (AWS)
    res = s3.list_objects(Bucket=keyed, MaxKeys=2, Delimiter="/", Marker="a")
    assert res["Marker"] == "a"
    assert [o["Key"] for o in res["Contents"]] + [p["Prefix"] for p in res.get("CommonPrefixes", [])] == [
        "a.txt",
        "a/",
    ]
    assert res["NextMarker"] == "a/"
    res = s3.list_objects(Bucket=keyed, MaxKeys=3, Delimiter="/", Marker=res["NextMarker"])
    assert [o["Key"] for o in res["Contents"]] == ["a0", "amp&<lt>"]
    assert res["CommonPrefixes"] == [{"Prefix": "b/"}] and res["NextMarker"] == "b/"
    assert s3.list_objects(Bucket=keyed, MaxKeys=0).get("Contents") is None


def test_v1_max_keys_clamped(fs3: Any, big: str) -> None:
    s3 = fs3
    res = s3.list_objects(Bucket=big, MaxKeys=5000)
    assert len(res["Contents"]) == 1000 and res["IsTruncated"] is True
    assert res["MaxKeys"] == 5000  # S3 echoes the requested limit and caps the page at 1000
    res = s3.list_objects_v2(Bucket=big, MaxKeys=1001)
    assert res["KeyCount"] == 1000 and res["IsTruncated"] is True


def test_paginators_over_2500_keys(fs3: Any, big: str) -> None:
    s3 = fs3
    keys, prefixes = all_v2(s3, big)
    assert len(keys) == 2500 and keys == sorted(keys) and not prefixes
    keys, prefixes = all_v2(s3, big, Delimiter="/", PaginationConfig={"PageSize": 7})
    assert prefixes == [f"d{d:02d}/" for d in range(48)]
    assert keys == [f"top{i:03d}" for i in range(100)]
    keys, prefixes = all_v2(s3, big, Prefix="d07/", PaginationConfig={"PageSize": 9})
    assert keys == [f"d07/k{i:03d}" for i in range(50)]
    v1 = [
        o["Key"]
        for page in s3.get_paginator("list_objects").paginate(Bucket=big, PaginationConfig={"PageSize": 400})
        for o in page.get("Contents", [])
    ]
    assert v1 == sorted(v1) and len(v1) == 2500
    v1p = [
        p["Prefix"]
        for page in s3.get_paginator("list_objects").paginate(
            Bucket=big, Delimiter="/", PaginationConfig={"PageSize": 5}
        )
        for p in page.get("CommonPrefixes", [])
    ]
    assert v1p == [f"d{d:02d}/" for d in range(48)]


def test_bad_arguments(s3: Any, keyed: str) -> None:
    for kw in ({"MaxKeys": -1}, {"EncodingType": "base64"}):
        with pytest.raises(ClientError) as exc:
            s3.list_objects_v2(Bucket=keyed, **kw)
        assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=f"nope-{uuid.uuid4().hex[:8]}")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"

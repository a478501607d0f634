"""ListParts pagination edges and PutBucketTagging edge cases, held to AWS S3's behaviour.

Each test names the evidence its expectations rest on (AWS's API reference as botocore carries it,
SDK and emulator issue threads that quote AWS's answers, MinIO's and moto's implementations); where
AWS documents nothing, the choice is the one that keeps SDK paginators terminating.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from botocore.exceptions import ClientError


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return str(e.value.response["Error"]["Code"]), int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _tagset(d: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in d.items()]}


def _upload(s3: Any, bucket: str, key: str, n: int) -> str:
    uid = str(s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])

    def put(part: int) -> None:
        s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=part, Body=b"p%d" % part)

    with ThreadPoolExecutor(4) as pool:  # boto3 clients are thread-safe; 1001 parts take seconds
        list(pool.map(put, range(1, n + 1)))
    return uid


def _raw_query(s3: Any, **query: str) -> None:
    """Send the next ListParts with these query values verbatim (boto3 would refuse non-integers);
    set before signing, so the signature covers them."""

    def edit(request: Any, **_: Any) -> None:
        url = urlsplit(request.url)
        pairs = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in query]
        request.url = urlunsplit(url._replace(query=urlencode(pairs + list(query.items()))))

    s3.meta.events.register_first("before-sign.s3.ListParts", edit, unique_id="raw-list-parts-query")


# --- ListParts -------------------------------------------------------------------------------


def test_list_parts_marker_at_or_past_last_part(s3: Any, bucket: str) -> None:
    """A marker at or beyond the last part is a valid, final, empty page: no Part elements,
    IsTruncated false, the marker echoed. AWS documents NextPartNumberMarker only for truncated
    pages; rs3gw answers 0 there, as MinIO (set only when truncated) and moto (0 for an empty page)
    do, and a paginator stops on IsTruncated before reading it."""
    uid = _upload(s3, bucket, "k", 3)
    for marker in (3, 4, 10000, 2**31 - 1):
        res = s3.list_parts(Bucket=bucket, Key="k", UploadId=uid, PartNumberMarker=marker)
        assert res.get("Parts", []) == []
        assert res["IsTruncated"] is False and res["PartNumberMarker"] == marker
        assert res["NextPartNumberMarker"] == 0 and res["MaxParts"] == 1000
    # The last full page of a walk ends the walk, with its own last part as the marker.
    res = s3.list_parts(Bucket=bucket, Key="k", UploadId=uid, PartNumberMarker=1, MaxParts=2)
    assert [p["PartNumber"] for p in res["Parts"]] == [2, 3]
    assert res["IsTruncated"] is False and res["NextPartNumberMarker"] == 3


def test_list_parts_max_parts_zero_is_a_final_empty_page(s3: Any, bucket: str) -> None:
    """max-parts=0 (valid: AWS's range message reads "between 0 and 2147483647") answers no parts
    and IsTruncated false, as MinIO's ListObjectParts does (``if maxParts == 0 { return result }``)
    and as rs3gw's ListMultipartUploads does for max-uploads=0. rs3gw used to answer IsTruncated
    true with NextPartNumberMarker equal to the request's marker, a page no client can advance
    from: botocore's paginator then fails with "The same next token was received twice"."""
    uid = _upload(s3, bucket, "k", 2)
    for marker in (0, 1, 2):
        res = s3.list_parts(Bucket=bucket, Key="k", UploadId=uid, MaxParts=0, PartNumberMarker=marker)
        assert res.get("Parts", []) == [] and res["IsTruncated"] is False
        assert res["MaxParts"] == 0 and res["PartNumberMarker"] == marker
    # Paginating with PageSize=0 ends after one page instead of failing on a repeated token.
    pages = list(
        s3.get_paginator("list_parts").paginate(
            Bucket=bucket, Key="k", UploadId=uid, PaginationConfig={"PageSize": 0}
        )
    )
    assert len(pages) == 1 and pages[0].get("Parts", []) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max-parts", "-1", "Argument max-parts must be an integer between 0 and 2147483647"),
        ("max-parts", "-2147483648", "Argument max-parts must be an integer between 0 and 2147483647"),
        ("max-parts", "abc", "Provided max-parts not an integer or within integer range"),
        ("max-parts", "1.5", "Provided max-parts not an integer or within integer range"),
        ("max-parts", "2147483648", "Provided max-parts not an integer or within integer range"),
        (
            "part-number-marker",
            "-1",
            "Argument part-number-marker must be an integer between 0 and 2147483647",
        ),
        ("part-number-marker", "x1", "Provided part-number-marker not an integer or within integer range"),
        (
            "part-number-marker",
            "99999999999999999999",
            "Provided part-number-marker not an integer or within integer range",
        ),
    ],
)
def test_list_parts_rejects_bad_numbers(s3: Any, bucket: str, name: str, value: str, message: str) -> None:
    """400 InvalidArgument naming the argument, with AWS's two messages: out of 0..2^31-1 for a
    negative integer, "not an integer or within integer range" for text or an int32 overflow
    (moto's test_multipart_list_parts_invalid_argument restates AWS's answers; versitygw's
    ErrInvalidMaxParts and a .NET compatibility suite checked against S3 give the first)."""
    uid = _upload(s3, bucket, "k", 1)
    _raw_query(s3, **{name: value})
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="k", UploadId=uid)
    assert _err(e) == ("InvalidArgument", 400)
    error = e.value.response["Error"]
    assert error["Message"] == message
    assert (error["ArgumentName"], error["ArgumentValue"]) == (name, value)


def test_list_parts_max_parts_above_1000_pages_by_1000(s3: Any, bucket: str) -> None:
    """AWS: "The ListParts request returns a maximum of 1,000 uploaded parts"; a larger max-parts is
    accepted (not an error) and a page still holds at most 1000 parts, truncated, with the 1000th
    part as the next marker."""
    uid = _upload(s3, bucket, "big", 1001)
    for max_parts in (1001, 5000, 2**31 - 1):
        res = s3.list_parts(Bucket=bucket, Key="big", UploadId=uid, MaxParts=max_parts)
        assert [p["PartNumber"] for p in res["Parts"]] == list(range(1, 1001))
        assert res["IsTruncated"] is True and res["NextPartNumberMarker"] == 1000
    rest = s3.list_parts(Bucket=bucket, Key="big", UploadId=uid, MaxParts=5000, PartNumberMarker=1000)
    assert [p["PartNumber"] for p in rest["Parts"]] == [1001] and rest["IsTruncated"] is False


# --- PutBucketTagging ------------------------------------------------------------------------


def test_put_bucket_tagging_empty_tag_set_leaves_no_tag_set(s3: Any, bucket: str) -> None:
    """An empty <TagSet/> is accepted (204) and leaves the bucket with no tag set, so GetBucketTagging
    answers 404 NoSuchTagSet, as after DeleteBucketTagging. Arsenal's parser, written against AWS,
    notes "AWS does not return error if no tag" and Cloudserver's GetBucketTagging then answers
    NoSuchTagSet for the empty set; moto does the same. rs3gw used to store the empty set and
    answer 200 with an empty TagSet (MinIO's behaviour, not AWS's)."""
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"a": "1"}))
    resp = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _err(e) == ("NoSuchTagSet", 404)
    assert e.value.response["Error"]["BucketName"] == bucket
    # On a bucket that never had tags, too; and tags can be set again afterwards.
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []})
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _err(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"b": "2"}))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "b", "Value": "2"}]


def test_put_bucket_tagging_over_50_tags_is_bad_request(s3: Any, bucket: str) -> None:
    """51 tags: 400 BadRequest "Bucket tag count cannot be greater than 50" (versitygw's REST test
    run against S3 directly, Cloudserver's bucketPutTagging written against AWS; AWS answers the
    object form "BadRequest: Object tags cannot be greater than 10", boto/boto3#1213). The set in
    place is kept."""
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"keep": "me"}))
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({f"k{i}": "v" for i in range(51)}))
    assert _err(e) == ("BadRequest", 400)
    assert e.value.response["Error"]["Message"] == "Bucket tag count cannot be greater than 50"
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "keep", "Value": "me"}]
    # Exactly 50 is the limit, not over it.
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({f"k{i}": "v" for i in range(50)}))
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50


def test_put_bucket_tagging_invalid_tags(s3: Any, bucket: str) -> None:
    """Duplicate keys, a key over 128 characters and a value over 256 are 400 InvalidTag (AWS's
    PutBucketTagging special error; versitygw issue #1232 quotes S3's InvalidTag answer for a
    129-character key). Lengths count characters, not UTF-8 bytes: 128 'é' keys are accepted."""
    cases: list[list[dict[str, str]]] = [
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
    ]
    for tag_set in cases:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
        assert _err(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _err(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"é" * 128: "ü" * 256}))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "é" * 128, "Value": "ü" * 256}]

"""Request-body XML parsing: S3 shapes, namespace tolerance, and refusal of DTDs."""

from __future__ import annotations

import pytest

from rs3gw.errors import MalformedXML
from rs3gw.protocol.xml_parse import (
    CompletedPart,
    DeleteEntry,
    parse_complete_multipart,
    parse_create_bucket,
    parse_delete_objects,
    parse_tagging,
    parse_versioning,
)

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


@pytest.mark.parametrize("ns", [NS, ""])
def test_complete_multipart(ns: str) -> None:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload{ns}>'
        '<Part><PartNumber>2</PartNumber><ETag>"abc"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>'
        "<Part><ETag>&quot;def&quot;</ETag><PartNumber> 1 </PartNumber>"
        "<ChecksumSHA256>xyz=</ChecksumSHA256><ChecksumCRC64NVME>q</ChecksumCRC64NVME></Part>"
        "<Part><PartNumber>3</PartNumber><ETag>ghi</ETag></Part>"
        "</CompleteMultipartUpload>"
    ).encode()
    assert parse_complete_multipart(body) == [
        CompletedPart(2, "abc", {"CRC32": "AAAAAA=="}),
        CompletedPart(1, "def", {"SHA256": "xyz=", "CRC64NVME": "q"}),
        CompletedPart(3, "ghi", {}),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
        b"<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>",
    ],
)
def test_complete_multipart_malformed(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_complete_multipart(body)


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Tagging><TagSet/></Tagging>',
        b'<!doctype Tagging SYSTEM "file:///etc/passwd"><Tagging><TagSet/></Tagging>',
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Tagging>'
        b"<TagSet><Tag><Key>&lol2;</Key><Value>v</Value></Tag></TagSet></Tagging>",
        "<Tagging><TagSet/></Tagging>".encode("utf-16"),
        "<Tagging><TagSet/></Tagging>".encode("utf-16-be"),
        b"<Tagging><TagSet/>\x00</Tagging>",
    ],
)
def test_dtd_and_odd_encodings_rejected(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_tagging(body)


def test_delete_objects() -> None:
    body = (
        f"<Delete{NS}><Quiet>true</Quiet>"
        "<Object><Key>a</Key></Object>"
        "<Object><Key> spaced key </Key><VersionId>v1</VersionId></Object>"
        "<Object><Key>&lt;tag&gt; &amp; &#13;cr</Key></Object>"
        "</Delete>"
    ).encode()
    entries, quiet = parse_delete_objects(body)
    assert quiet is True
    assert entries == [
        DeleteEntry("a", None),
        DeleteEntry(" spaced key ", "v1"),
        DeleteEntry("<tag> & \rcr", None),
    ]


def test_delete_objects_quiet_default_and_unicode() -> None:
    body = "<Delete><Object><Key>ключ/😀</Key></Object></Delete>".encode()
    assert parse_delete_objects(body) == ([DeleteEntry("ключ/😀", None)], False)
    body = b"<Delete><Quiet>False</Quiet><Object><Key>k</Key></Object></Delete>"
    assert parse_delete_objects(body)[1] is False


def test_delete_objects_limits() -> None:
    many = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1000))
    entries, _ = parse_delete_objects(f"<Delete>{many}</Delete>".encode())
    assert len(entries) == 1000
    too_many = many + "<Object><Key>extra</Key></Object>"
    with pytest.raises(MalformedXML):
        parse_delete_objects(f"<Delete>{too_many}</Delete>".encode())
    for bad in (
        b"<Delete></Delete>",
        b"<Delete><Quiet>true</Quiet></Delete>",
        b"<Delete><Object><VersionId>v</VersionId></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
        b"<Delete><Object><Key>k</Key></Object>",
    ):
        with pytest.raises(MalformedXML):
            parse_delete_objects(bad)


def test_create_bucket() -> None:
    assert parse_create_bucket(b"") is None
    assert parse_create_bucket(b"  \n") is None
    body = f"<CreateBucketConfiguration{NS}><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
    assert parse_create_bucket(body.encode()) == "eu-west-1"
    assert (
        parse_create_bucket(b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>")
        is None
    )
    assert parse_create_bucket(b"<CreateBucketConfiguration></CreateBucketConfiguration>") is None
    with pytest.raises(MalformedXML):
        parse_create_bucket(b"<Nope/>")
    with pytest.raises(MalformedXML):
        parse_create_bucket(b"<CreateBucketConfiguration>")


def test_versioning() -> None:
    body = f"<VersioningConfiguration{NS}><Status>Enabled</Status></VersioningConfiguration>"
    assert parse_versioning(body.encode()) == ("Enabled", None)
    body = "<VersioningConfiguration><Status>Suspended</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>"
    assert parse_versioning(body.encode()) == ("Suspended", "Disabled")
    assert parse_versioning(b"<VersioningConfiguration/>") == (None, None)
    for bad in (
        b"<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>",
        b"<VersioningConfiguration><Status></Status></VersioningConfiguration>",
        b"<VersioningConfiguration><MfaDelete>Yes</MfaDelete></VersioningConfiguration>",
        b"",
    ):
        with pytest.raises(MalformedXML):
            parse_versioning(bad)


def test_tagging() -> None:
    body = (
        f"<Tagging{NS}><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>"
        "<Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>"
    )
    assert parse_tagging(body.encode()) == [("a", "1"), ("b", "")]
    assert parse_tagging(b"<Tagging><TagSet/></Tagging>") == []
    for bad in (
        b"<Tagging></Tagging>",
        b"<Tagging><TagSet><Tag><Value>1</Value></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
    ):
        with pytest.raises(MalformedXML):
            parse_tagging(bad)

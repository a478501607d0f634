"""Response XML builder: structure, escaping, and listing-sized speed."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest

from rs3gw.protocol.xml_write import S3_NS, XmlBuilder, escape

PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def test_basic_document() -> None:
    b = XmlBuilder("ListBucketResult")
    b.elem("Name", "bkt").elem("IsTruncated", False).elem("MaxKeys", 1000).elem("Prefix", None)
    b.open("Contents").elem("Key", "a&b").close()
    b.open("Contents").elem("Key", "x").elem("Quiet", True)
    out = b.to_bytes()
    assert out == (
        PROLOG + b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>bkt</Name><IsTruncated>false</IsTruncated><MaxKeys>1000</MaxKeys>"
        b"<Contents><Key>a&amp;b</Key></Contents>"
        b"<Contents><Key>x</Key><Quiet>true</Quiet></Contents></ListBucketResult>"
    )
    root = ET.fromstring(out)
    assert root.tag == f"{{{S3_NS}}}ListBucketResult"
    assert root.find(f"{{{S3_NS}}}Contents/{{{S3_NS}}}Key") is not None


def test_no_namespace_and_chaining() -> None:
    out = XmlBuilder("Error", namespace=False).elem("Code", "NoSuchKey").elem("Message", "m").to_bytes()
    assert out == PROLOG + b"<Error><Code>NoSuchKey</Code><Message>m</Message></Error>"


def test_close_root_explicitly_and_too_far() -> None:
    b = XmlBuilder("R", namespace=False).open("A").close().close()
    assert b.to_bytes() == PROLOG + b"<R><A></A></R>"
    with pytest.raises(ValueError):
        b.close()


def test_escape_round_trips_through_parser() -> None:
    text = "<a> & \"q\" 'x' \t\n\r é 😀 ]]>"
    out = XmlBuilder("R").elem("K", text).to_bytes()
    assert ET.fromstring(out)[0].text == text


def test_escape_control_characters() -> None:
    assert escape("plain") == "plain"
    assert escape("a\x01b\x00\x1f") == "a&#x1;b&#x0;&#x1F;"
    assert escape("\r") == "&#xD;"
    assert escape("\ufffe\udc80") == "&#xFFFE;&#xDC80;"
    # Lone surrogates must not break encoding of the document.
    assert XmlBuilder("R").elem("K", "bad\udc80").to_bytes().endswith(b"<K>bad&#xDC80;</K></R>")


def test_listing_speed() -> None:
    def render() -> bytes:
        b = XmlBuilder("ListBucketResult")
        b.elem("Name", "bucket").elem("KeyCount", 1000).elem("IsTruncated", True)
        for i in range(1000):
            b.open("Contents")
            b.elem("Key", f"dir/sub/object-{i:06d}.bin")
            b.elem("LastModified", "2009-10-12T17:50:30.000Z")
            b.elem("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')
            b.elem("Size", 1048576)
            b.elem("StorageClass", "STANDARD")
            b.close()
        return b.to_bytes()

    render()
    best = min(_timed(render) for _ in range(5))
    assert best < 0.02, best
    assert len(ET.fromstring(render())) == 1003


def _timed(fn: object) -> float:
    assert callable(fn)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t

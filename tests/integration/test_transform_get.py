"""GET ?x-rs3gw-transform=<chain> against a real server: images, compression, Object Lambda text
steps, access points, errors, cache, Range, conditional GETs, presigned URLs and raw signed requests."""

from __future__ import annotations

import gzip
import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote

import lz4.frame
import pytest
import zstandard
from botocore.exceptions import ClientError
from transform_helpers import PARAM, decode, enable_transform_param, error_code, image_bytes, signed_get

from conftest import Server, cleanup_bucket, start_server

BUCKET = "transform-get"
CONFIG = """
[transforms]
buffer_bytes = 65536
max_image_bytes = 1000000
[transforms.thumb]
chain = "resize:w=64,h=64,fit=cover|format:webp|quality:70"
[transforms.safe]
chain = "redact|upper"
"""

PII = (
    "name,email,phone,card\n"
    "Ann,ann.lee@example.com,555-867-5309,4111 1111 1111 1111\n"
    "Bob,bob+x@mail.example.org,(212) 555-0199,4111-1111-1111-1112\n"
    "Cy,no email here,+44 20 7946 0958,4242424242424242\n"
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("transform")
    cfg = base / "rs3gw.toml"
    cfg.write_text(CONFIG)
    server = start_server(base / "data", "--config", str(cfg))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(srv: Server) -> Iterator[Any]:
    client = enable_transform_param(srv.client())
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="photo.png", Body=image_bytes("PNG"), ContentType="image/png")
    client.put_object(Bucket=BUCKET, Key="photo.jpg", Body=image_bytes("JPEG"), ContentType="image/jpeg")
    client.put_object(Bucket=BUCKET, Key="pii.csv", Body=PII.encode(), ContentType="text/csv")
    client.put_object(Bucket=BUCKET, Key="doc.json", Body=b'{"b":[1,2,{"c":null}],"a":"\xc3\xa9"}')
    client.put_object(Bucket=BUCKET, Key="notes.txt", Body=b"hello world\n", ContentType="text/plain")
    yield client
    cleanup_bucket(client, BUCKET)


def get(s3: Any, key: str, spec: str, **kw: Any) -> dict[str, Any]:
    resp = s3.get_object(Bucket=BUCKET, Key=key, Transform=spec, **kw)
    resp["Data"] = resp["Body"].read()
    return resp


def client_error(s3: Any, key: str, spec: str) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key=key, Transform=spec)
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"].get("Message", "")


@pytest.mark.parametrize(
    ("key", "spec", "size", "fmt", "mode"),
    [
        ("photo.png", "resize:w=200,h=100,fit=cover|format:webp|quality:80", (200, 100), "WEBP", "RGB"),
        ("photo.png", "resize:w=200,h=100,fit=contain", (133, 100), "PNG", "RGB"),
        ("photo.png", "resize:w=50,h=70,fit=fill|format:jpeg|quality:60", (50, 70), "JPEG", "RGB"),
        ("photo.jpg", "resize:w=160", (160, 120), "JPEG", "RGB"),
        ("photo.jpg", "crop:x=10,y=20,w=100,h=50|format:gif", (100, 50), "GIF", "P"),
        ("photo.jpg", "format:bmp", (320, 240), "BMP", "RGB"),
        ("photo.png", "grayscale|format:tiff", (320, 240), "TIFF", "L"),
        ("photo.png", "rotate:90|format:png", (240, 320), "PNG", "RGB"),
    ],
)
def test_image_steps_decode_with_pillow(
    s3: Any, key: str, spec: str, size: tuple[int, int], fmt: str, mode: str
) -> None:
    resp = get(s3, key, spec)
    img = decode(resp["Data"])
    assert (img.size, img.format, img.mode) == (size, fmt, mode)
    assert resp["ContentType"] == f"image/{fmt.lower()}"
    assert resp["ContentLength"] == len(resp["Data"])


def test_quality_changes_size_and_etag_follows_the_chain(s3: Any) -> None:
    low = get(s3, "photo.png", "format:jpeg|quality:10")
    high = get(s3, "photo.png", "format:jpeg|quality:95")
    assert len(low["Data"]) < len(high["Data"])
    source = s3.head_object(Bucket=BUCKET, Key="photo.png")["ETag"]
    assert len({low["ETag"], high["ETag"], source}) == 3
    assert get(s3, "photo.png", "format:jpeg|quality:10")["ETag"] == low["ETag"]


def test_access_point_chain(s3: Any) -> None:
    resp = get(s3, "photo.jpg", "@thumb")
    img = decode(resp["Data"])
    assert (img.size, img.format) == ((64, 64), "WEBP")
    assert (
        resp["ResponseMetadata"]["HTTPHeaders"][PARAM] == "resize:w=64,h=64,fit=cover|format:webp|quality:70"
    )


@pytest.mark.parametrize(
    ("spec", "decompress", "ctype"),
    [
        ("gzip", gzip.decompress, "application/gzip"),
        ("gzip:level=9", gzip.decompress, "application/gzip"),
        (
            "zstd:level=7",
            lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
            "application/zstd",
        ),
        ("lz4", lz4.frame.decompress, "application/x-lz4"),
    ],
)
def test_compression_round_trips(s3: Any, spec: str, decompress: Any, ctype: str) -> None:
    resp = get(s3, "pii.csv", spec)
    assert resp["ContentType"] == ctype
    assert "ContentEncoding" not in resp  # a new representation, never decoded behind the caller's back
    assert decompress(resp["Data"]) == PII.encode()


def test_pii_redaction_only_luhn_valid_cards(s3: Any) -> None:
    out = get(s3, "pii.csv", "redact")["Data"].decode()
    for secret in ("ann.lee@example.com", "bob+x@mail.example.org", "555-867-5309", "(212) 555-0199"):
        assert secret not in out
    assert "+44 20 7946 0958" not in out
    assert "4111 1111 1111 1111" not in out and "4242424242424242" not in out  # Luhn-valid: redacted
    assert "4111-1111-1111-1112" in out  # fails the Luhn check: kept
    assert out.count("[REDACTED-EMAIL]") == 2 and out.count("[REDACTED-CARD]") == 2
    assert out.count("[REDACTED-PHONE]") == 3
    assert out.startswith("name,email,phone,card\nAnn,[REDACTED-EMAIL],")
    only_cards = get(s3, "pii.csv", "redact:types=card")["Data"].decode()
    assert "ann.lee@example.com" in only_cards and "[REDACTED-CARD]" in only_cards


def test_text_steps_and_chain(s3: Any) -> None:
    assert get(s3, "notes.txt", "upper")["Data"] == b"HELLO WORLD\n"
    assert get(s3, "notes.txt", "upper|lower")["Data"] == b"hello world\n"
    spec = "prefix:text=%3E%3E%20|suffix:text=--end|upper"
    assert get(s3, "notes.txt", spec)["Data"] == b">> HELLO WORLD\n--END"
    safe = get(s3, "pii.csv", "@safe")["Data"].decode()
    assert "[REDACTED-EMAIL]" in safe and "ANN" in safe
    both = get(s3, "pii.csv", "redact|gzip")
    assert b"example.com" not in gzip.decompress(both["Data"])


def test_json_prettify_and_minify(s3: Any) -> None:
    pretty = get(s3, "doc.json", "json-pretty:indent=4")
    assert pretty["ContentType"] == "application/json"
    text = pretty["Data"].decode()
    assert text == json.dumps({"b": [1, 2, {"c": None}], "a": "é"}, indent=4, ensure_ascii=False) + "\n"
    assert get(s3, "doc.json", "json-minify")["Data"] == '{"b":[1,2,{"c":null}],"a":"é"}'.encode()
    status, code, _ = client_error(s3, "notes.txt", "json-pretty")
    assert (status, code) == (400, "InvalidTransformation")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("resize", "needs w and/or h"),
        ("resize:w=0", "w must be 1..10000"),
        ("resize:w=10,depth=3", "unknown parameter"),
        ("resize:w=10,fit=squash", "fit='squash'"),
        ("format:heic", "not one of"),
        ("quality:101", "q must be 1..100"),
        ("frobnicate", "unknown transformation 'frobnicate'"),
        ("gzip||upper", "bad transformation name"),
        ("@nowhere", "no transformation access point named 'nowhere'"),
        ("zstd:level=40", "level must be 1..19"),
        ("redact:types=ssn", "types is"),
    ],
)
def test_bad_specs_are_400_invalid_transformation(s3: Any, spec: str, needle: str) -> None:
    status, code, message = client_error(s3, "photo.png", spec)
    assert (status, code) == (400, "InvalidTransformation")
    assert needle in message


def test_not_an_image_is_a_clean_400(srv: Server, s3: Any) -> None:
    status, code, message = client_error(s3, "notes.txt", "resize:w=10")
    assert (status, code) == (400, "InvalidTransformation") and "not an image" in message
    status, headers, body = signed_get(srv, f"/{BUCKET}/notes.txt?{PARAM}=" + quote("resize:w=10", safe=""))
    assert status == 400 and error_code(body) == "InvalidTransformation"
    assert body.startswith(b"<?xml") and headers["content-type"] == "application/xml"


def test_crop_outside_the_image_and_too_large_input(s3: Any) -> None:
    status, code, message = client_error(s3, "photo.png", "crop:x=300,y=0,w=100,h=10")
    assert (status, code) == (400, "InvalidTransformation") and "outside" in message
    s3.put_object(Bucket=BUCKET, Key="big.bin", Body=b"\0" * 1_000_001)
    status, code, message = client_error(s3, "big.bin", "resize:w=10")
    assert (status, code) == (400, "TransformationInputTooLarge") and "1000000" in message


def test_cache_hit_on_repeat(s3: Any) -> None:
    spec = "resize:w=33,h=33,fit=fill|format:png"
    first = get(s3, "photo.jpg", spec)
    second = get(s3, "photo.jpg", spec)
    h1, h2 = first["ResponseMetadata"]["HTTPHeaders"], second["ResponseMetadata"]["HTTPHeaders"]
    assert (h1["x-rs3gw-transform-cache"], h2["x-rs3gw-transform-cache"]) == ("miss", "hit")
    assert first["Data"] == second["Data"] and first["ETag"] == second["ETag"]
    s3.put_object(Bucket=BUCKET, Key="photo2.jpg", Body=image_bytes("JPEG", (100, 100)))
    again = get(s3, "photo2.jpg", spec)  # another object: its own entry
    assert again["ResponseMetadata"]["HTTPHeaders"]["x-rs3gw-transform-cache"] == "miss"


def test_overwrite_invalidates_by_etag(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="changing.txt", Body=b"one\n")
    assert get(s3, "changing.txt", "upper")["Data"] == b"ONE\n"
    s3.put_object(Bucket=BUCKET, Key="changing.txt", Body=b"two\n")
    resp = get(s3, "changing.txt", "upper")
    assert resp["Data"] == b"TWO\n"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-rs3gw-transform-cache"] == "miss"


def test_range_applies_to_transformed_output(s3: Any) -> None:
    whole = get(s3, "pii.csv", "upper")["Data"]
    part = get(s3, "pii.csv", "upper", Range="bytes=5-14")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["Data"] == whole[5:15]
    assert part["ContentRange"] == f"bytes 5-14/{len(whole)}"


def test_conditional_get_uses_the_transformed_etag(s3: Any) -> None:
    etag = get(s3, "notes.txt", "upper")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="notes.txt", Transform="upper", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert get(s3, "notes.txt", "upper", IfMatch=etag)["Data"] == b"HELLO WORLD\n"


def test_large_object_streams_and_rejects_range(s3: Any) -> None:
    body = (PII * 800).encode()  # ~130 KiB, over buffer_bytes = 64 KiB: streamed
    s3.put_object(Bucket=BUCKET, Key="big.csv", Body=body, ContentType="text/csv")
    resp = get(s3, "big.csv", "redact|zstd")
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-rs3gw-transform-cache"] == "bypass"
    out = zstandard.ZstdDecompressor().decompressobj().decompress(resp["Data"]).decode()
    assert out.count("[REDACTED-CARD]") == 1600 and "4111-1111-1111-1112" in out
    assert "example.com" not in out
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="big.csv", Transform="upper", Range="bytes=0-9")
    assert exc.value.response["Error"]["Code"] == "InvalidTransformation"


def test_presigned_url_carries_the_signed_parameter(srv: Server, s3: Any) -> None:
    # SigV4 presigning signs every query parameter; SigV2 (boto3's default for presigned S3 URLs)
    # signs only S3's sub-resources, so a SigV2 URL would not protect the chain.
    v4 = enable_transform_param(srv.client(signature_version="s3v4"))
    url = v4.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "photo.png", "Transform": "resize:w=40|format:gif"}
    )
    assert f"{PARAM}=" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as resp:
        img = decode(resp.read())
    assert (img.size, img.format) == ((40, 30), "GIF")
    tampered = url.replace("w%3D40", "w%3D41")
    assert tampered != url
    with pytest.raises(HTTPError) as exc:
        urllib.request.urlopen(tampered)
    assert exc.value.code == 403


def test_raw_signed_request(srv: Server, s3: Any) -> None:
    path = f"/{BUCKET}/photo.png?{PARAM}=" + quote("resize:w=64,h=48,fit=fill|format:webp", safe="")
    status, headers, body = signed_get(srv, path)
    assert status == 200 and headers["content-type"] == "image/webp"
    assert decode(body).size == (64, 48)
    assert headers[PARAM] == "resize:w=64,h=48,fit=fill|format:webp"


def test_plain_get_unchanged(s3: Any) -> None:
    resp = s3.get_object(Bucket=BUCKET, Key="notes.txt")
    assert resp["Body"].read() == b"hello world\n"
    assert "x-rs3gw-transform-cache" not in resp["ResponseMetadata"]["HTTPHeaders"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_video_transcode(s3: Any, tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "in.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=128x96:rate=10",
            str(src),
        ],
        check=True,
    )
    s3.put_object(Bucket=BUCKET, Key="clip.mp4", Body=src.read_bytes(), ContentType="video/mp4")
    resp = get(s3, "clip.mp4", "video:webm,codec=vp9,w=64")
    assert resp["ContentType"] == "video/webm" and resp["Data"][:4] == b"\x1a\x45\xdf\xa3"
    mp4 = get(s3, "clip.mp4", "video:mp4,codec=h264,fps=5,bitrate=200")
    assert mp4["ContentType"] == "video/mp4" and mp4["Data"][4:8] == b"ftyp"
    status, code, message = client_error(s3, "notes.txt", "video:mp4")
    assert (status, code) == (400, "InvalidTransformation") and "could not transcode" in message


@pytest.mark.skipif(shutil.which("ffmpeg") is not None, reason="ffmpeg is installed")
def test_video_without_ffmpeg_is_a_clear_400(s3: Any) -> None:
    status, code, message = client_error(s3, "photo.png", "video:webm")
    assert (status, code) == (400, "InvalidTransformation") and "ffmpeg" in message


def test_bad_access_point_config_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[transforms.oops]\nchain = "resize:w=10|nosuchstep"\n')
    with pytest.raises(RuntimeError, match="nosuchstep"):
        start_server(tmp_path / "data", "--config", str(cfg)).stop()

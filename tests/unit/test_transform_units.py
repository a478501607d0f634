"""rs3gw.transform without a server: grammar, Luhn, streamed redaction across chunk cuts, limits,
settings validation, the LRU, and custom Python steps through the StorageEngine API."""

from __future__ import annotations

import asyncio
import gzip
import io
from pathlib import Path

import pytest
from PIL import Image

from rs3gw import errors
from rs3gw.storage import StorageEngine
from rs3gw.transform import (
    Result,
    ResultCache,
    TransformService,
    TransformSettings,
    luhn_valid,
    parse_spec,
    parse_transforms_table,
    redact_text,
)

Invalid = errors.error_class("InvalidTransformation")


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def test_grammar_and_canonical_form() -> None:
    steps = parse_spec(" Resize: w=10 , h=20 | format:WEBP|prefix:text=a%7Cb%2Cc ")
    assert [s.name for s in steps] == ["resize", "format", "prefix"]
    assert steps[0].params == {"w": "10", "h": "20"}
    assert steps[2].params == {"text": "a|b,c"}
    svc = TransformService()
    assert svc.plan("resize:w=10,h=20|format:WEBP").canonical == "resize:w=10,h=20|format:WEBP"
    assert parse_spec("@t", {"t": "upper|gzip"})[1].name == "gzip"
    for bad in ("", "a||b", "resize:", "x:w=1,w=2", "bad name", "@t"):
        with pytest.raises(Invalid):
            parse_spec(bad)
    with pytest.raises(Invalid):
        parse_spec("|".join(["upper"] * 17))


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("4242424242424242") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234567812345678")
    text = "card 5555 5555 5555 4444, not 5555 5555 5555 4445; x@y.io; 212-555-0100"
    out = redact_text(text)
    assert out == "card [REDACTED-CARD], not 5555 5555 5555 4445; [REDACTED-EMAIL]; [REDACTED-PHONE]"


def test_streamed_redaction_is_independent_of_chunk_cuts() -> None:
    data = ("line with jane.doe@example.com and 4111 1111 1111 1111 é\n" * 50).encode()
    svc = TransformService()
    plan = svc.plan("redact|upper")
    whole = svc.run(plan, data, "text/plain").body

    async def streamed(size: int) -> bytes:
        async def body():  # type: ignore[no-untyped-def]
            for i in range(0, len(data), size):
                yield data[i : i + size]

        return b"".join([c async for c in svc.stream(plan, body())])

    for size in (1, 7, 64, 1000):
        assert asyncio.run(streamed(size)) == whole
    assert b"EXAMPLE.COM" not in whole and "É".encode() in whole


def test_limits_before_reading_and_pixel_budget() -> None:
    svc = TransformService(TransformSettings(max_image_bytes=100, max_pixels=1000))
    plan = svc.plan("resize:w=5")
    with pytest.raises(errors.error_class("TransformationInputTooLarge")):
        svc.check_size(plan, 101)
    svc.check_size(svc.plan("gzip"), 10**12)  # streamed steps have no size limit
    with pytest.raises(Invalid, match="at most 1000 pixels"):
        svc.run(plan, _png(40, 40), "image/png")
    assert Image.open(io.BytesIO(svc.run(plan, _png(20, 10), "image/png").body)).size == (5, 2)


def test_settings_table() -> None:
    s = parse_transforms_table({"cache_bytes": 1024, "thumb": {"chain": "resize:w=10"}, "p": "upper"})
    assert s.cache_bytes == 1024 and dict(s.points) == {"thumb": "resize:w=10", "p": "upper"}
    assert parse_transforms_table(s.to_json()) == s
    for bad in ({"cache_bytes": -1}, {"x": 3}, {"t": {"chain": "a||b"}}, {"t": {"chain": "x", "y": 1}}):
        with pytest.raises(ValueError):
            parse_transforms_table(bad)
    svc = TransformService(parse_transforms_table({"t": {"chain": "nosuch"}}))
    with pytest.raises(ValueError, match="nosuch"):
        svc.check_points()


def test_lru_is_bounded_in_bytes() -> None:
    cache = ResultCache(100)
    assert not cache.put(("big",), Result(b"x" * 26, "t"))  # over a quarter of the budget
    for i in range(10):
        assert cache.put((str(i),), Result(b"x" * 20, "t"))
    assert cache.size <= 100 and len(cache) == 5
    assert cache.get(("0",)) is None and cache.get(("9",)) is not None


def test_custom_python_transformation_through_storage_engine(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path / "storage", fsync=False) as storage:
            await storage.create_bucket("bkt")
            await storage.put_object("bkt", "k.txt", "text/plain", {}, b"abc\nxyz\n")
            storage.register_transformation("reverse", lambda data: data[::-1])
            storage.register_transformation(
                "repeat", lambda data, p: data * int(p.get("n", "2")), content_type="text/x-repeated"
            )
            assert await storage.apply_transformation(b"hello", "reverse") == b"olleh"
            data, ctype = await storage.get_object_transformed("bkt", "k.txt", "reverse|upper|repeat:n=3")
            assert data == b"\nZYX\nCBA" * 3 and ctype == "text/x-repeated"
            chained = await storage.transform_chain(b"hi", [("repeat", {"n": "2"}), ("gzip", {})])
            assert gzip.decompress(chained) == b"hihi"
            with pytest.raises(ValueError):
                storage.register_transformation("gzip", lambda d: d)
            storage.register_transformation("boom", lambda d: 1 / 0)  # type: ignore[arg-type,return-value]
            with pytest.raises(Invalid, match="ZeroDivisionError"):
                await storage.apply_transformation(b"x", "boom")

    asyncio.run(run())


def test_config_file_and_worker_hand_off(tmp_path: Path) -> None:
    from rs3gw.config import load_settings, settings_from_json, settings_to_json

    cfg = tmp_path / "c.toml"
    cfg.write_text('[transforms]\ncache_bytes = 4096\n[transforms.thumb]\nchain = "resize:w=8|format:png"\n')
    s = load_settings({"data_dir": str(tmp_path / "d")}, {}, cfg)
    assert s.transforms.cache_bytes == 4096 and s.transforms.points == {"thumb": "resize:w=8|format:png"}
    assert settings_from_json(settings_to_json(s)).transforms == s.transforms

"""docs/s3-compatibility.md is generated from the handler table: these tests keep the checked-in
doc equal to what scripts/gen_compat_doc.py generates (CI runs tests/unit, nothing else runs the
generator's --check), and keep the "real state" status tied to bucket_probes' handlers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers import HANDLERS, IMPLEMENTED, bucket_probes
from rs3gw.protocol.response import Response

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gen() -> ModuleType:
    """The generator script, loaded fresh so that a test's monkeypatching stays in that test."""
    path = ROOT / "scripts" / "gen_compat_doc.py"
    spec = importlib.util.spec_from_file_location("_script_gen_compat_doc", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _probe_ops() -> set[str]:
    return {op for op, h in HANDLERS.items() if h.__module__ == bucket_probes.__name__}


def test_checked_in_doc_is_up_to_date(gen: ModuleType) -> None:
    assert gen.main(["--check"]) == 0, "run: .venv/bin/python scripts/gen_compat_doc.py"


def test_check_fails_on_a_stale_doc(gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check compares the whole text: one changed status line makes it exit 1."""
    fresh = gen.render(IMPLEMENTED, gen.real_state_from_handlers())
    line = "| PutBucketAccelerateConfiguration | `PUT /{Bucket}?accelerate` | real state: "
    assert line in fresh
    stale = fresh.replace(
        line, "| PutBucketAccelerateConfiguration | `PUT /{Bucket}?accelerate` | implemented |x"
    )
    out = tmp_path / "docs" / "s3-compatibility.md"
    out.parent.mkdir()
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "OUTPUT", out)
    assert gen.main(["--check"]) == 1  # missing
    out.write_text(stale)
    assert gen.main(["--check"]) == 1  # stale
    out.write_text(fresh)
    assert gen.main(["--check"]) == 0


def test_real_state_covers_exactly_the_probe_handlers(gen: ModuleType) -> None:
    """Every routed bucket_probes handler, and nothing else, is documented as real state."""
    real = gen.real_state_from_handlers()
    assert set(real) == _probe_ops()
    assert len(real) == len(bucket_probes.REAL_STATE)
    text = gen.render(IMPLEMENTED, real)
    for op, phrase in real.items():
        assert f"| {op} | " in text
        assert f" | real state: {phrase} |" in text
    assert "| GetObject | `GET /{Bucket}/{Key+}` | implemented |" in text
    n_impl = len(IMPLEMENTED) - len(real)
    assert f"**{n_impl} of " in text
    assert f"; {len(real)} more answer rs3gw's real state" in text


def test_refusal_phrases_name_501_for_refusing_writes() -> None:
    """A Put handler in bucket_probes refuses some write with 501; its phrase must say which."""
    for handler, phrase in bucket_probes.REAL_STATE.items():
        if handler.__name__.startswith("put_"):
            assert "answer 501" in phrase or "answers 501" in phrase, handler.__name__


def test_unexplained_probe_handler_stops_the_generator(
    gen: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new bucket_probes handler routed without a phrase must not be documented as implemented."""
    handler = bucket_probes.put_bucket_logging
    trimmed = {h: p for h, p in bucket_probes.REAL_STATE.items() if h is not handler}
    monkeypatch.setattr(bucket_probes, "REAL_STATE", trimmed)
    with pytest.raises(SystemExit, match="PutBucketLogging"):
        gen.real_state_from_handlers()
    with pytest.raises(SystemExit, match="PutBucketLogging"):
        gen.main(["--check"])


def test_phrase_for_unrouted_function_stops_the_generator(
    gen: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def not_routed(ctx: Ctx) -> Response:
        raise AssertionError

    extra = {**bucket_probes.REAL_STATE, not_routed: "never used"}
    monkeypatch.setattr(bucket_probes, "REAL_STATE", extra)
    with pytest.raises(SystemExit, match="not_routed"):
        gen.real_state_from_handlers()

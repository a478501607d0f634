"""codecs.mlformats on mutated real files: every cut and byte flip parses or is "not a model",
never an exception; the symbolic pickle replay never imports or calls anything."""

from __future__ import annotations

import asyncio
import os
import pickle
import random
import sys
from pathlib import Path

import pytest

from rs3gw.codecs import mlformats
from rs3gw.codecs.mlpickle import Call, Global, replay

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import ml_model_files as mf


def extract(data: bytes) -> mlformats.MlMetadata | None:
    async def read(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return asyncio.run(mlformats.extract(read, len(data)))


@pytest.mark.parametrize("make", [mf.safetensors_bytes, mf.onnx_bytes, mf.torch_bytes])
def test_mutations_never_raise(make: object) -> None:
    data = make()  # type: ignore[operator]
    assert extract(data) is not None
    rng = random.Random(7)
    for _ in range(150):
        cut = data[: rng.randrange(len(data))]
        flipped = bytearray(data)
        for _ in range(3):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        for sample in (cut, bytes(flipped)):
            result = extract(sample)
            assert result is None or isinstance(result, mlformats.MlMetadata)


def test_replay_builds_records_instead_of_calling(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tree = replay(mf.evil_pickle(marker))
    assert isinstance(tree, dict)
    call = tree["state_dict"]
    assert isinstance(call, Call) and isinstance(call.func, Global)
    assert call.func.name == "system" and call.func.module in ("posix", "nt", "os")
    assert not marker.exists()


def test_every_pickle_protocol_replays() -> None:
    value = {"a": [1, 2.5, "x", None, True, 2**70], "t": (1, 2), "s": {3}, "f": frozenset({4})}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        tree = replay(pickle.dumps(value, protocol=proto))
        assert isinstance(tree, dict) and tree["a"] == value["a"] and tree["t"] == (1, 2), proto
        assert isinstance(tree["s"], Call)  # a set is a constructor call, recorded not made


def test_unknown_bytes_and_candidates() -> None:
    assert not mlformats.candidate(b"hello world 1234")
    assert mlformats.candidate(b"PK\x03\x04" + b"\0" * 12)
    for _ in range(50):  # random bytes: no exception, whatever they are
        extract(os.urandom(64))
    assert extract(b"") is None

"""PyTorch training-data loading from the gateway with AWS's own PyTorch client, s3torchconnector.

s3torchconnector wraps Mountpoint's Rust S3 client on the AWS CRT, which lists with ListObjectsV2,
splits large GETs into parallel 8 MiB ranged requests, uploads every S3Writer/S3Checkpoint object as a
multipart upload and signs with SigV4 over UNSIGNED-PAYLOAD: a request mix boto3 never produces. The
datasets are read through `torch.utils.data.DataLoader(num_workers=2)`, so each forked worker builds
its own CRT client, as in a real training job. Every byte is compared with what boto3 uploaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
import pytest
import s3torchconnector as s3tc  # pinned in the dev extra: a missing install fails, it does not skip
import torch
from torch.utils.data import DataLoader

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket, put_fast

REGION = "us-east-1"
MIB = 1 << 20
N_SAMPLES = 200
N_LARGE = 8  # 1-3 MiB samples among the 200; the rest are a few KiB, like tokenised shards or small images
PREFIX = "train/"


@dataclass(frozen=True)
class Corpus:
    """The uploaded samples: bucket name and the exact bytes of every key."""

    bucket: str
    samples: dict[str, bytes]


def _make_samples(rng: random.Random) -> dict[str, bytes]:
    """200 samples: .npy arrays (what numpy-based pipelines store) and raw bytes, some 1-3 MiB."""
    samples: dict[str, bytes] = {}
    nprng = np.random.default_rng(rng.randrange(1 << 32))
    for i in range(N_SAMPLES):
        large = i % (N_SAMPLES // N_LARGE) == 0
        size = rng.randrange(1 * MIB, 3 * MIB + 1) if large else rng.randrange(1, 48 * 1024)
        # some keys the way real datasets name them (partitions, spaces, '+', non-ASCII): the CRT
        # percent-encodes them itself, so they test the gateway's SigV4 canonical-URI decoding
        stem = f"class=ünï/img {i:04d}+v~2" if i % 13 == 5 else f"{i:04d}"
        if i % 2:
            buf = io.BytesIO()
            np.save(buf, nprng.standard_normal(max(1, size // 8)).astype(np.float64))
            samples[f"{PREFIX}{stem}.npy"] = buf.getvalue()
        else:
            samples[f"{PREFIX}{stem}.bin"] = rng.randbytes(size)
    return samples


@pytest.fixture(scope="module")
def corpus(server: Server) -> Iterator[Corpus]:
    """One bucket holding the 200 samples, uploaded once with boto3 (the reference client)."""
    s3 = server.client()
    name = f"torch-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    samples = _make_samples(random.Random(20261203))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=name, Key=kv[0], Body=kv[1]), samples.items()))
    try:
        yield Corpus(name, samples)
    finally:
        s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in samples]})
        cleanup_bucket(s3, name)


@pytest.fixture
def crt_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRT client takes credentials only from its default chain: give it the test user's keys in the
    environment (inherited by DataLoader workers) and keep it off any profile or instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)


def _config() -> Any:
    """Path-style addressing (the gateway serves http://127.0.0.1:PORT/bucket/key); one attempt, so a
    protocol error fails the test instead of being retried away."""
    return s3tc.S3ClientConfig(force_path_style=True, max_attempts=1)


def _key_and_bytes(reader: Any) -> tuple[str, bytes]:
    """Dataset transform run inside the worker: the whole object, read the way training code reads it."""
    return str(reader.key), bytes(reader.read())


def _check_npy(corpus: Corpus, key: str, got: bytes) -> None:
    """Byte-exact, and an .npy sample also decodes to the array that was saved."""
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(corpus.samples[key]).hexdigest(), key
    if key.endswith(".npy"):
        np.testing.assert_array_equal(np.load(io.BytesIO(got)), np.load(io.BytesIO(corpus.samples[key])))


@pytest.mark.timeout(120)
def test_map_dataset_through_dataloader_workers(server: Server, corpus: Corpus, crt_env: None) -> None:
    dataset = s3tc.S3MapDataset.from_prefix(
        f"s3://{corpus.bucket}/{PREFIX}",
        region=REGION,
        endpoint=server.endpoint,
        transform=_key_and_bytes,
        s3client_config=_config(),
    )
    assert len(dataset) == N_SAMPLES  # the listing (ListObjectsV2, one page) saw every sample
    loader = DataLoader(dataset, batch_size=None, shuffle=True, num_workers=2)
    seen: Counter[str] = Counter()
    for key, data in loader:
        _check_npy(corpus, key, data)
        seen[key] += 1
    assert seen == Counter(list(corpus.samples))


@pytest.mark.timeout(120)
def test_iterable_dataset_sharded_over_workers(server: Server, corpus: Corpus, crt_env: None) -> None:
    """With sharding each worker lists the prefix itself and takes every other object: together the two
    workers must yield each sample exactly once."""
    dataset = s3tc.S3IterableDataset.from_prefix(
        f"s3://{corpus.bucket}/{PREFIX}",
        region=REGION,
        endpoint=server.endpoint,
        transform=_key_and_bytes,
        s3client_config=_config(),
        enable_sharding=True,
    )
    seen: Counter[str] = Counter()
    for key, data in DataLoader(dataset, batch_size=None, num_workers=2):
        _check_npy(corpus, key, data)
        seen[key] += 1
    assert seen == Counter(list(corpus.samples))


def test_listing_pages_past_1000_keys(server: Server, crt_env: None) -> None:
    """A prefix of 1100 objects needs two ListObjectsV2 pages: the CRT follows the gateway's
    continuation token and the dataset gets every key once."""
    s3 = server.client()
    name = f"list-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    try:
        keys = [f"shards/{i:05d}" for i in range(1100)]
        put_fast(server, name, keys)
        dataset = s3tc.S3MapDataset.from_prefix(
            f"s3://{name}/shards/", region=REGION, endpoint=server.endpoint, s3client_config=_config()
        )
        assert sorted(dataset[i].key for i in range(len(dataset))) == keys
    finally:
        for i in range(0, len(keys), 1000):  # batch deletes: one request per 1000 instead of 1100
            s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]})
        cleanup_bucket(s3, name)


@pytest.mark.parametrize(
    "constructor",
    [
        pytest.param(lambda: s3tc.S3ReaderConstructor.sequential(), id="sequential"),
        # buffer_size=0: every read() is its own ranged GET, so the gateway's Range handling is what's tested
        pytest.param(lambda: s3tc.S3ReaderConstructor.range_based(buffer_size=0), id="ranged-unbuffered"),
        pytest.param(lambda: s3tc.S3ReaderConstructor.range_based(buffer_size=256 * 1024), id="ranged-256k"),
    ],
)
def test_random_access_reads(server: Server, corpus: Corpus, crt_env: None, constructor: Any) -> None:
    """seek/read/readinto at random offsets of the large samples (how record-format readers and
    torch.load use a file) return exactly the uploaded bytes, including reads running past the end."""
    dataset = s3tc.S3MapDataset.from_prefix(
        f"s3://{corpus.bucket}/{PREFIX}",
        region=REGION,
        endpoint=server.endpoint,
        s3client_config=_config(),
        reader_constructor=constructor(),
    )
    rng = random.Random(7)
    large = [i for i in range(len(dataset)) if len(corpus.samples[dataset[i].key]) > MIB]
    assert len(large) == N_LARGE
    for index in large:
        reader = dataset[index]
        want = corpus.samples[reader.key]
        size = len(want)
        for _ in range(6):
            start = rng.randrange(size)
            length = rng.choice([1, 17, 4096, 300_000, size])  # `size`: runs past the end, short read
            assert reader.seek(start) == start
            assert reader.read(length) == want[start : start + length]
            assert reader.tell() == min(size, start + length)
        assert reader.seek(-100, io.SEEK_END) == size - 100
        assert reader.read() == want[-100:]
        reader.seek(10)
        assert reader.seek(1000, io.SEEK_CUR) == 1010
        buf = bytearray(5000)
        assert reader.readinto(buf) == 5000
        assert bytes(buf) == want[1010:6010]
        reader.seek(size)
        assert reader.read(10) == b""


@pytest.mark.timeout(120)
def test_checkpoint_multipart_roundtrip(server: Server, crt_env: None) -> None:
    """torch.save of a ~14 MiB state_dict through S3Checkpoint: the CRT uploads it as a multipart upload
    of 8 MiB parts, reads it back with parallel ranged GETs, and torch.load gets equal tensors."""
    s3 = server.client()
    name = f"ckpt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    try:
        gen = torch.Generator().manual_seed(3)
        state = {
            "layer1.weight": torch.randn(1536, 1536, generator=gen),  # 9 MiB: more than one part alone
            "layer1.bias": torch.randn(1536, generator=gen),
            "layer2.weight": torch.randint(
                -(2**31), 2**31 - 1, (1024, 1024), generator=gen, dtype=torch.int32
            ),
            "step": torch.tensor(4242),
        }
        checkpoint = s3tc.S3Checkpoint(region=REGION, endpoint=server.endpoint, s3client_config=_config())
        uri = f"s3://{name}/epoch-3/model.pt"
        with checkpoint.writer(uri) as writer:
            torch.save(state, writer)
            written = writer.tell()
        head = s3.head_object(Bucket=name, Key="epoch-3/model.pt")
        assert head["ContentLength"] == written > 8 * MIB
        # it really went through multipart: a multipart ETag ends in -<number of parts>, 8 MiB each
        parts = int(head["ETag"].strip('"').rpartition("-")[2])
        assert parts == -(-written // (8 * MIB)) >= 2, head["ETag"]

        # S3Reader is a seekable io.BufferedIOBase; torch's stubs only name IO[bytes]
        loaded = torch.load(cast(IO[bytes], checkpoint.reader(uri)), weights_only=True)
        assert loaded.keys() == state.keys()
        for k, tensor in state.items():
            assert torch.equal(loaded[k], tensor), k
        # and a plain client sees the same bytes the CRT wrote
        body = s3.get_object(Bucket=name, Key="epoch-3/model.pt")["Body"].read()
        assert len(body) == written
        assert torch.load(io.BytesIO(body), weights_only=True).keys() == state.keys()
    finally:
        cleanup_bucket(s3, name)


def test_s3writer_small_objects(server: Server, crt_env: None) -> None:
    """S3Writer of small objects (the CRT still uses a one-part multipart upload), written in several
    write() calls and as an empty object, read back identically by boto3 and by an S3Reader."""
    s3 = server.client()
    name = f"wr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    try:
        checkpoint = s3tc.S3Checkpoint(region=REGION, endpoint=server.endpoint, s3client_config=_config())
        pieces = [b"header\n", os.urandom(3000), b"", memoryview(b"tail-bytes")]
        want = b"".join(bytes(p) for p in pieces)
        with checkpoint.writer(f"s3://{name}/meta/small ünï+=.bin") as writer:
            for piece in pieces:
                writer.write(piece)
            assert writer.tell() == len(want)
        with checkpoint.writer(f"s3://{name}/meta/empty.bin"):
            pass
        assert s3.get_object(Bucket=name, Key="meta/small ünï+=.bin")["Body"].read() == want
        assert checkpoint.reader(f"s3://{name}/meta/small ünï+=.bin").read() == want
        assert s3.head_object(Bucket=name, Key="meta/empty.bin")["ContentLength"] == 0
        assert checkpoint.reader(f"s3://{name}/meta/empty.bin").read() == b""
    finally:
        cleanup_bucket(s3, name)

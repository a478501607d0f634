"""The backup repository: a local directory or an S3 bucket/prefix holding bodies and manifests.

Layout (the same in both kinds):
  objects/<sha[:2]>/<sha256>         each distinct object body once (dedup across all snapshots)
  snapshots/<bucket>/<id>.json       one manifest per snapshot, written last and atomically
A manifest is only written after every body it references is stored, so a crashed backup leaves
orphan bodies (collected by prune) but never a manifest pointing at missing data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredBody:
    sha256: str
    age_s: float  # seconds since it was written; prune spares young orphans of a running backup


def body_key(sha: str) -> str:
    return f"objects/{sha[:2]}/{sha}"


def manifest_key(bucket: str, snap_id: str) -> str:
    return f"snapshots/{bucket}/{snap_id}.json"


class Repo(ABC):
    """Flat key/value storage; every write of a whole key is atomic."""

    description: str

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A seekable reader (callers close it)."""

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, age in seconds) under prefix."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def bodies(self) -> Iterator[StoredBody]:
        for key, age in self.list_keys("objects/"):
            yield StoredBody(key.rsplit("/", 1)[-1], age)

    def hash_body(self, sha: str) -> str:
        """Re-read a stored body and return its actual SHA-256 (verify's ground truth)."""
        h = hashlib.sha256()
        with self.open(body_key(sha)) as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()


class LocalRepo(Repo):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _atomic(self, key: str, writer: Any) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                writer(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        def copy(out: IO[bytes]) -> None:
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)

        self._atomic(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> IO[bytes]:
        return self._path(key).open("rb")

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        now = time.time()
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith(".tmp-"):
                yield p.relative_to(self.root).as_posix(), now - p.stat().st_mtime

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Repo(Repo):
    """A bucket/prefix on another S3 endpoint; a single PutObject is atomic, which is all we need."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}"

    def _k(self, key: str) -> str:
        return self.prefix + key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put_file(self, key: str, path: Path) -> None:
        with path.open("rb") as fh:
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=fh)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        return data

    def open(self, key: str) -> IO[bytes]:
        spool = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115 - returned to the caller
        body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
        while chunk := body.read(CHUNK):
            spool.write(chunk)
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        now = time.time()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._k(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :], now - item["LastModified"].timestamp()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))


def s3_client(
    endpoint: str, access_key: str | None, secret_key: str | None, region: str = "us-east-1"
) -> Any:
    """A botocore client (botocore is a main dependency; boto3 is not needed)."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}, max_pool_connections=16),
    )


def open_repo(location: str, endpoint: str | None, access_key: str | None, secret_key: str | None) -> Repo:
    """DIR, or s3://bucket/prefix on `endpoint` (required for s3:// locations)."""
    if location.startswith("s3://"):
        if not endpoint:
            raise ValueError("an s3:// backup location needs --target-endpoint/--source-endpoint")
        bucket, _, prefix = location[5:].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {location!r}")
        return S3Repo(s3_client(endpoint, access_key, secret_key), bucket, prefix)
    return LocalRepo(Path(location))

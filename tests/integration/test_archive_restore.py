"""Archival tiers and RestoreObject against a real server, with boto3, in accelerated time.

One lifecycle day is DAY seconds; GLACIER Standard restores take RESTORE_S (set in [tiers]), so
the "ongoing" state is observable; restored copies expire after Days lifecycle days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, fresh_bucket, start_server
from polling import wait_until

DAY = 1.0
RESTORE_S = 1.5
CLOCK = ("--lifecycle-day-seconds", str(DAY), "--lifecycle-interval", "0.2")  # accelerated lifecycle days


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("archive")
    cfg = base / "rs3gw.toml"
    cfg.write_text(
        "[tiers]\n"
        "interval = 0.1\n"
        f'restore_seconds = {{ "GLACIER.Standard" = {RESTORE_S}, "GLACIER.Expedited" = 0, '
        '"DEEP_ARCHIVE.Bulk" = 0.2 }\n'
    )
    s = start_server(base / "data", "--config", str(cfg), *CLOCK)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(srv: Server) -> Any:
    return srv.client()


@pytest.fixture()
def bucket(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3, "arch") as name:
        yield name


def _code(fn: Callable[[], Any]) -> tuple[str, int, dict[str, Any]]:
    with pytest.raises(ClientError) as ei:
        fn()
    r = ei.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]


def _wait(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    wait_until(pred, timeout)


def _files(root: Path) -> dict[str, bytes]:
    blobs = root / "blobs"
    if not blobs.exists():
        return {}
    return {p.name: p.read_bytes() for p in blobs.rglob("*") if p.is_file()}


def _restore(s3: Any, bucket: str, key: str, days: int = 1, tier: str = "Standard") -> int:
    r = s3.restore_object(
        Bucket=bucket, Key=key, RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}}
    )
    return int(r["ResponseMetadata"]["HTTPStatusCode"])


@pytest.mark.local_backend_only("archive tiers move blob files between local directories")
def test_archive_get_refused_restore_cycle(srv: Server, s3: Any, bucket: str) -> None:
    body = b"archived bytes " * 1000
    s3.put_object(Bucket=bucket, Key="cold", Body=body, StorageClass="GLACIER")
    # The bytes sit in the tier directory, not in the backend's.
    tier_files = _files(srv.data_dir / "tiers" / "glacier")
    assert any(len(v) >= 100 for v in tier_files.values())
    assert not set(tier_files) & set(_files(srv.data_dir))

    head = s3.head_object(Bucket=bucket, Key="cold")
    assert head["StorageClass"] == "GLACIER"
    assert "Restore" not in head
    code, status, err = _code(lambda: s3.get_object(Bucket=bucket, Key="cold"))
    assert (code, status) == ("InvalidObjectState", 403)
    assert err.get("StorageClass") == "GLACIER"
    code, status, _ = _code(
        lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "cold"})
    )
    assert (code, status) == ("InvalidObjectState", 403)

    assert _restore(s3, bucket, "cold", days=2) == 202
    assert s3.head_object(Bucket=bucket, Key="cold")["Restore"] == 'ongoing-request="true"'
    code, status, _ = _code(lambda: _restore(s3, bucket, "cold"))
    assert (code, status) == ("RestoreAlreadyInProgress", 409)
    code, status, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="cold"))
    assert (code, status) == ("InvalidObjectState", 403)

    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="cold").get("Restore", ""))
    restore = s3.head_object(Bucket=bucket, Key="cold")["Restore"]
    assert restore.startswith('ongoing-request="false", expiry-date="')
    got = s3.get_object(Bucket=bucket, Key="cold")
    assert got["Body"].read() == body
    assert got["Restore"] == restore
    assert got["StorageClass"] == "GLACIER"
    # Restoring again while restored: 200 and still readable.
    assert _restore(s3, bucket, "cold", days=2) == 200

    # Two lifecycle days later the temporary copy is gone and GET is refused again.
    _wait(lambda: "Restore" not in s3.head_object(Bucket=bucket, Key="cold"), timeout=20)
    code, status, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="cold"))
    assert (code, status) == ("InvalidObjectState", 403)
    # ... and the bytes are still in the tier, restorable again.
    assert _restore(s3, bucket, "cold", days=1, tier="Expedited") == 202
    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="cold").get("Restore", ""))
    assert s3.get_object(Bucket=bucket, Key="cold")["Body"].read() == body


def test_restore_errors(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="warm", Body=b"x")
    code, status, _ = _code(lambda: _restore(s3, bucket, "warm"))
    assert (code, status) == ("InvalidObjectState", 403)
    code, status, _ = _code(lambda: _restore(s3, bucket, "missing"))
    assert (code, status) == ("NoSuchKey", 404)
    s3.put_object(Bucket=bucket, Key="deep", Body=b"d", StorageClass="DEEP_ARCHIVE")
    code, status, _ = _code(lambda: _restore(s3, bucket, "deep", tier="Expedited"))
    assert (code, status) == ("InvalidArgument", 400)
    for bad in (b"<RestoreRequest><Days>x</Days></RestoreRequest>", b"<nope/>", b"<RestoreRequest/>"):

        def send(body: bytes = bad) -> None:
            def swap(request: Any, **_: Any) -> None:
                request.data = body

            s3.meta.events.register_first("before-sign.s3.RestoreObject", swap)
            try:
                _restore(s3, bucket, "deep", tier="Bulk")
            finally:
                s3.meta.events.unregister("before-sign.s3.RestoreObject", swap)

        code, status, _ = _code(send)
        assert (code, status) == ("MalformedXML", 400)
    code, status, _ = _code(lambda: _restore(s3, bucket, "deep", days=0, tier="Bulk"))
    assert (code, status) in (("InvalidArgument", 400), ("MalformedXML", 400))


@pytest.mark.local_backend_only("archive tiers move blob files between local directories")
def test_multipart_and_copy_into_deep_archive(srv: Server, s3: Any, bucket: str) -> None:
    part = b"p" * (5 * 1024 * 1024)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", StorageClass="DEEP_ARCHIVE")
    etags = [
        s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=part + bytes([n])
        )["ETag"]
        for n in (1, 2)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]},
    )
    deep = _files(srv.data_dir / "tiers" / "deep_archive")
    assert sum(len(v) for v in deep.values()) >= 2 * len(part)
    code, _, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="mp"))
    assert code == "InvalidObjectState"
    assert _restore(s3, bucket, "mp", tier="Bulk") == 202
    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="mp").get("Restore", ""))
    got = s3.get_object(Bucket=bucket, Key="mp")["Body"].read()
    assert got == part + b"\x01" + part + b"\x02"

    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")
    s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, StorageClass="GLACIER"
    )
    assert s3.head_object(Bucket=bucket, Key="dst")["StorageClass"] == "GLACIER"
    code, _, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="dst"))
    assert code == "InvalidObjectState"
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"copy me"


@pytest.mark.local_backend_only("archive tiers move blob files between local directories")
def test_lifecycle_transition_archives(srv: Server, s3: Any, bucket: str) -> None:
    body = b"L" * (200 * 1024)
    s3.put_object(Bucket=bucket, Key="logs/a", Body=body)
    before = set(_files(srv.data_dir / "tiers" / "glacier"))
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "archive",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "logs/"},
                    "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
                }
            ]
        },
    )
    _wait(lambda: s3.head_object(Bucket=bucket, Key="logs/a").get("StorageClass") == "GLACIER", timeout=20)
    _wait(lambda: len(set(_files(srv.data_dir / "tiers" / "glacier")) - before) == 1)
    new = set(_files(srv.data_dir / "tiers" / "glacier")) - before
    # Moved, not copied: the backend copy goes right after the archive-tier commit (copy first).
    _wait(lambda: not new & set(_files(srv.data_dir)))
    code, _, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="logs/a"))
    assert code == "InvalidObjectState"
    assert _restore(s3, bucket, "logs/a", tier="Expedited") == 202
    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="logs/a").get("Restore", ""))
    assert s3.get_object(Bucket=bucket, Key="logs/a")["Body"].read() == body


def test_archived_object_survives_restart(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--lifecycle-day-seconds", "1", "--lifecycle-interval", "0.2")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="keep")
        s3.put_object(Bucket="keep", Key="k", Body=b"kept", StorageClass="GLACIER")
        assert _restore(s3, "keep", "k", tier="Expedited") == 202
    finally:
        srv.stop()
    srv = start_server(tmp_path / "data", "--lifecycle-day-seconds", "1", "--lifecycle-interval", "0.2")
    try:
        s3 = srv.client()
        # The restore requested before the restart completes after it (Expedited: 5 min = 0.2 s).
        _wait(lambda: "false" in s3.head_object(Bucket="keep", Key="k").get("Restore", ""))
        assert s3.get_object(Bucket="keep", Key="k")["Body"].read() == b"kept"
    finally:
        srv.stop()


def test_versions_archive_and_restore_separately(srv: Server, s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"one", StorageClass="GLACIER")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v", Body=b"two")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    code, _, _ = _code(lambda: s3.get_object(Bucket=bucket, Key="v", VersionId=v1))
    assert code == "InvalidObjectState"
    code, _, _ = _code(
        lambda: s3.restore_object(Bucket=bucket, Key="v", VersionId=v2, RestoreRequest={"Days": 1})
    )
    assert code == "InvalidObjectState"  # the current version is STANDARD
    r = s3.restore_object(
        Bucket=bucket,
        Key="v",
        VersionId=v1,
        RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}},
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="v", VersionId=v1).get("Restore", ""))
    assert s3.get_object(Bucket=bucket, Key="v", VersionId=v1)["Body"].read() == b"one"
    assert "Restore" not in s3.head_object(Bucket=bucket, Key="v", VersionId=v2)


@pytest.mark.local_backend_only("archive tiers move blob files between local directories")
def test_deleting_an_archived_object_frees_its_tier_data(srv: Server, s3: Any, bucket: str) -> None:
    tier = srv.data_dir / "tiers" / "glacier"
    before = set(_files(tier))
    s3.put_object(Bucket=bucket, Key="gone", Body=b"g" * 5000, StorageClass="GLACIER")
    added = set(_files(tier)) - before
    assert len(added) == 1
    s3.delete_object(Bucket=bucket, Key="gone")
    _wait(lambda: not added & set(_files(tier)))


@pytest.mark.local_backend_only("archive tiers move blob files between local directories")
def test_copy_of_a_restored_object_starts_without_its_state(s3: Any, bucket: str) -> None:
    """A copy is a new version: it never takes the source's restore state, archive tier or access
    tier (it once answered HEAD with the source's x-amz-restore, a STANDARD object "restored")."""
    body = b"restored, then copied" * 200
    s3.put_object(Bucket=bucket, Key="cold", Body=body, StorageClass="GLACIER")
    assert _restore(s3, bucket, "cold", days=2, tier="Expedited") == 202
    _wait(lambda: "false" in s3.head_object(Bucket=bucket, Key="cold").get("Restore", ""))
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "cold"})
    s3.copy_object(
        Bucket=bucket,
        Key="it",
        CopySource={"Bucket": bucket, "Key": "cold"},
        StorageClass="INTELLIGENT_TIERING",
    )
    for key, cls in (("copy", None), ("it", "INTELLIGENT_TIERING")):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert "Restore" not in head
        assert head.get("StorageClass") == cls
        got = s3.get_object(Bucket=bucket, Key=key)
        assert "Restore" not in got
        assert got["Body"].read() == body

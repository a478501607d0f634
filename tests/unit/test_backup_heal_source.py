"""The backup repair source returns a body only for the exact version, and only when intact."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rs3gw.backup.heal_source import BackupSource, Wanted
from rs3gw.backup.manifest import Manifest, VersionRecord, save
from rs3gw.backup.repo import LocalRepo, body_key

BODY = b"hello backup"
SHA = hashlib.sha256(BODY).hexdigest()
ETAG = hashlib.md5(BODY, usedforsecurity=False).hexdigest()


def _repo(tmp_path: Path, version_id: str = "v1", body: bytes = BODY) -> LocalRepo:
    repo = LocalRepo(tmp_path)
    repo.put_bytes(body_key(SHA), body)
    rec = VersionRecord(
        "k", version_id, "2026-01-01T00:00:00.000Z", True, etag=f'"{ETAG}"', size=len(BODY), sha256=SHA
    )
    save(
        repo,
        Manifest(
            "20260101T000000Z-a",
            "b",
            "full",
            "2026-01-01T00:00:00.000Z",
            None,
            "http://x",
            "Enabled",
            {},
            [rec],
        ),
    )
    return repo


def test_exact_version_is_fetched_and_verified(tmp_path: Path) -> None:
    got = BackupSource(_repo(tmp_path)).fetch(Wanted("b", "k", "v1", ETAG, len(BODY)))
    assert got is not None and got[1] == BODY


def test_other_version_or_etag_or_bucket_is_not_a_match(tmp_path: Path) -> None:
    src = BackupSource(_repo(tmp_path))
    assert src.fetch(Wanted("b", "k", "v2", ETAG, len(BODY))) is None
    assert src.fetch(Wanted("b", "k", "v1", "0" * 32, len(BODY))) is None
    assert src.fetch(Wanted("other", "k", "v1", ETAG, len(BODY))) is None


def test_null_version_matches_on_etag_and_size(tmp_path: Path) -> None:
    src = BackupSource(_repo(tmp_path, version_id="null"))
    assert src.fetch(Wanted("b", "k", "null", ETAG, len(BODY))) is not None
    assert src.fetch(Wanted("b", "k", "null", ETAG, len(BODY) + 1)) is None


def test_damaged_backup_body_is_refused(tmp_path: Path) -> None:
    src = BackupSource(_repo(tmp_path, body=b"hello BACKUP"))
    assert src.fetch(Wanted("b", "k", "v1", ETAG, len(BODY))) is None

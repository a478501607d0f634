"""`rs3gw compliance report` against state a real server built (boto3 over real sockets): the findings
must name exactly what is there — the unencrypted bucket and its counts, the public policy, the lock
bucket, lifecycle rules, the audit chain (and its tampering), store users and idle accounts."""

from __future__ import annotations

import html.parser
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server

PLAIN_SIZES = (5, 7, 11)  # bytes of the three unencrypted objects
ENC_SIZES = (10, 20)


def cli(data_dir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RS3GW_")}
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", *args, "--data-dir", str(data_dir), "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def report(data_dir: Path, config: Path, standard: str, *extra: str) -> tuple[int, dict[str, Any]]:
    out = cli(data_dir, config, "compliance", "report", "--standard", standard, *extra)
    assert out.returncode in (0, 1), out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    assert out.stderr.strip().endswith(doc["summary"]["line"])
    return out.returncode, doc


def find(doc: dict[str, Any], check: str, resource: str) -> dict[str, Any]:
    hits = [f for f in doc["findings"] if f["check"] == check and f["resource"] == resource]
    assert len(hits) == 1, (check, resource, [f["id"] for f in doc["findings"]])
    return hits[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A data dir with the state below, its server stopped (the audit log flushed and closed)."""
    root = tmp_path_factory.mktemp("compliance")
    data = root / "data"
    config = root / "rs3gw.toml"
    config.write_text(
        f'access_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\nmetadata = "sqlite"\n'
        f'[[users]]\nname = "{USER2[0]}"\naccess_key = "{USER2[1]}"\nsecret_key = "{USER2[2]}"\n'
    )
    srv = start_server(data, "--metadata", "sqlite")
    try:
        _build(srv)
    finally:
        srv.stop()
    out = cli(data, config, "admin", "user", "create", "bob")
    assert out.returncode == 0, out.stderr
    yield data, config


def _build(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="enc")
    s3.put_bucket_encryption(
        Bucket="enc",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    for i, n in enumerate(ENC_SIZES):
        s3.put_object(Bucket="enc", Key=f"e{i}", Body=b"e" * n)
    s3.put_public_access_block(
        Bucket="enc",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.create_bucket(Bucket="plain")
    for i, n in enumerate(PLAIN_SIZES):
        s3.put_object(Bucket="plain", Key=f"p{i}", Body=b"p" * n)
    s3.put_bucket_lifecycle_configuration(
        Bucket="plain",
        LifecycleConfiguration={
            "Rules": [
                {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}
            ]
        },
    )
    s3.create_bucket(Bucket="open")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::open/*"}
        ],
    }
    s3.put_bucket_policy(Bucket="open", Policy=json.dumps(policy))
    s3.put_object(Bucket="open", Key="o", Body=b"o", ServerSideEncryption="AES256")
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="locked",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    s3.put_object(
        Bucket="locked", Key="l", Body=b"l", ChecksumAlgorithm="CRC32", ServerSideEncryption="AES256"
    )
    other = srv.client(USER2[1], USER2[2])
    other.list_buckets()


def test_soc2_findings_reflect_the_state(built: tuple[Path, Path]) -> None:
    data, config = built
    rc, doc = report(data, config, "soc2")
    assert rc == 1  # at least one failing finding
    assert doc["schema"] == "rs3gw-compliance-report/1" and doc["standard"] == "soc2"
    enc = find(doc, "encryption-at-rest", "plain")
    assert enc["status"] == "fail" and enc["control"] == "CC6.1"
    assert enc["data"]["unencrypted_objects"] == 3 and enc["data"]["unencrypted_bytes"] == sum(PLAIN_SIZES)
    assert enc["data"]["encrypted_objects"] == 0 and enc["data"]["default_encryption"] is None
    assert "0 of 3 object versions encrypted" in enc["evidence"] and "p0" in enc["evidence"]
    good = find(doc, "encryption-at-rest", "enc")
    assert good["status"] == "pass" and good["data"]["encrypted_objects"] == len(ENC_SIZES)
    assert (
        good["data"]["encrypted_bytes"] == sum(ENC_SIZES) and good["data"]["default_encryption"] == "AES256"
    )
    # All objects encrypted, but nothing makes the next write encrypted: a warning, not a pass.
    assert find(doc, "encryption-at-rest", "open")["status"] == "warn"

    public = find(doc, "public-access", "open")
    assert public["status"] == "fail" and public["data"]["policy"] == "public"
    assert "bucket policy grants public access" in public["evidence"]
    assert find(doc, "public-access", "enc")["status"] == "pass"
    assert find(doc, "public-access", "plain")["status"] == "warn"  # private, but no PublicAccessBlock

    audit = find(doc, "audit-integrity", "server")
    assert audit["status"] == "pass" and audit["control"] == "CC7.2"
    assert audit["data"]["chain_ok"] is True and audit["data"]["records"] > 10
    assert audit["data"]["first"] <= audit["data"]["last"]

    lock = find(doc, "data-protection", "locked")
    assert lock["status"] == "pass" and lock["data"]["default_retention"] == "GOVERNANCE 1 days"
    assert lock["data"]["locked_versions"] == 1
    assert find(doc, "data-protection", "plain")["status"] == "fail"
    assert find(doc, "retention", "plain")["data"]["expiration_days"] == [30]
    assert find(doc, "retention", "plain")["status"] == "pass"
    assert find(doc, "retention", "enc")["status"] == "warn"

    keys = find(doc, "key-age", "aws/s3")
    assert keys["status"] == "pass" and keys["data"]["age_days"] < 1
    admin = find(doc, "inactive-users", "admin")
    assert admin["status"] == "pass" and admin["data"]["last_seen"] is not None
    assert find(doc, "inactive-users", USER2[0])["status"] == "pass"
    bob = find(doc, "inactive-users", "bob")
    assert bob["status"] == "warn" and bob["data"]["source"] == "store" and bob["data"]["last_seen"] is None
    assert find(doc, "integrity-scrub", "server")["status"] == "warn"  # no scrub has run

    s = doc["summary"]
    assert s["total"] == len(doc["findings"]) == s["pass"] + s["fail"] + s["warn"] + s["n/a"]
    assert s["line"].startswith(f"SOC2: {s['total']} findings: {s['fail']} fail")
    assert "CC6.1" in s["failing_controls"]
    for f in doc["findings"]:
        assert f["status"] in ("pass", "fail", "warn", "n/a") and f["evidence"] and f["recommendation"]


def test_thresholds_turn_recent_state_into_failures(built: tuple[Path, Path]) -> None:
    data, config = built
    _, doc = report(data, config, "hipaa", "--idle-days", "0", "--key-max-age-days", "0")
    assert find(doc, "key-age", "aws/s3")["status"] == "fail"
    for user in ("admin", USER2[0], "bob"):
        assert find(doc, "inactive-users", user)["status"] == "fail", user
    assert find(doc, "inactive-users", "admin")["control"] == "164.308(a)(3)(ii)(C)"


def test_each_standard_maps_its_controls(built: tuple[Path, Path]) -> None:
    data, config = built
    controls = {}
    for standard in ("soc2", "hipaa", "gdpr"):
        _, doc = report(data, config, standard)
        assert doc["standard"] == standard
        controls[standard] = {f["check"]: f["control"] for f in doc["findings"]}
        assert find(doc, "encryption-at-rest", "plain")["status"] == "fail"
    assert controls["hipaa"]["encryption-at-rest"] == "164.312(a)(2)(iv)"
    assert controls["hipaa"]["audit-integrity"] == "164.312(b)"
    assert controls["hipaa"]["encryption-in-transit"] == "164.312(e)(2)(ii)"
    assert controls["gdpr"]["encryption-at-rest"] == "Art. 32(1)(a)"
    assert controls["gdpr"]["audit-integrity"] == "Art. 30"
    assert controls["gdpr"]["retention"] == "Art. 17 / Art. 5(1)(e)"
    assert "data-protection" not in controls["gdpr"]
    assert controls["soc2"]["encryption-in-transit"] == "CC6.7"
    out = cli(data, config, "compliance", "report", "--standard", "pci")
    assert out.returncode == 2 and "invalid choice" in out.stderr


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows: dict[str, str] = {}
        self.text: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "meta"):
            self.stack.append(tag)
        if tag == "tr":
            self._row = dict(attrs).get("id")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row:
            self.rows[self._row] = self.rows.get(self._row, "") + data


def test_html_is_a_well_formed_page_with_the_findings(built: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = built
    target = tmp_path / "gdpr.html"
    out = cli(
        data,
        config,
        "compliance",
        "report",
        "--standard",
        "gdpr",
        "--format",
        "html",
        "--output",
        str(target),
    )
    assert out.returncode == 1 and out.stdout == "", out.stderr
    page = target.read_text()
    assert (
        page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.split("<body>")[0]
    )
    parser = _Collect()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    _, doc = report(data, config, "gdpr")
    assert set(parser.rows) == {f["id"] for f in doc["findings"]}
    row = parser.rows["encryption-at-rest:plain"]
    assert "fail" in row and "0 of 3 object versions encrypted" in row
    assert doc["summary"]["line"] in "".join(parser.text)


def test_tampered_audit_record_fails_the_audit_finding(built: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = built
    log = data / "audit" / "audit-current.log"
    original = log.read_bytes()
    lines = original.splitlines(keepends=True)
    target = next(i for i, ln in enumerate(lines) if b'"action":"PutBucketPolicy"' in ln)
    lines[target] = lines[target].replace(b'"bucket":"open"', b'"bucket":"opem"')
    try:
        log.write_bytes(b"".join(lines))
        _, doc = report(data, config, "soc2")
        audit = find(doc, "audit-integrity", "server")
        assert audit["status"] == "fail" and audit["data"]["chain_ok"] is False
        assert f"audit-current.log:{target + 1}:" in audit["evidence"] and "MAC mismatch" in audit["evidence"]
        assert "CC7.2" in doc["summary"]["failing_controls"]
    finally:
        log.write_bytes(original)
    _, doc = report(data, config, "soc2")
    assert find(doc, "audit-integrity", "server")["status"] == "pass"

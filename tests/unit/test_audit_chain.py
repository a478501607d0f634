"""The audit chain's tamper detection, rotation and security monitor, on logs written by the real writer."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import zstandard

from rs3gw.audit.chain import CURRENT, load_or_create_key, segments
from rs3gw.audit.query import Query, parse_time, run_query
from rs3gw.audit.security import SecurityMonitor
from rs3gw.audit.settings import parse_audit_table
from rs3gw.audit.verify import verify_log
from rs3gw.audit.writer import ChainWriter


def write_log(directory: Path, n: int, rotate_bytes: int = 1 << 30, compression: str = "zstd") -> bytes:
    key = load_or_create_key(directory)
    w = ChainWriter(
        directory,
        key,
        rotate_bytes=rotate_bytes,
        rotate_seconds=0,
        compression=compression,
        fsync=False,
        queue_size=10_000,
        on_written=lambda batch: None,
    )
    w.start()
    for i in range(n):
        w.submit(
            {
                "type": "request",
                "action": "PutObject",
                "bucket": "b",
                "key": f"k{i}",
                "ts": 1000.0 + i,
                "status": 200 if i % 3 else 404,
                "error": "" if i % 3 else "NoSuchKey",
                "principal": "admin",
            }
        )
        if i % 10 == 9:
            w.flush()  # several batches, so size rotation gets a chance between them
    w.close()
    return key


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_clean_log_verifies_and_key_is_private(tmp_path: Path) -> None:
    key = write_log(tmp_path, 20)
    rep = verify_log(tmp_path, key)
    assert rep.ok and rep.records == 20 and (rep.first_seq, rep.last_seq) == (1, 20), rep
    assert stat.S_IMODE(os.stat(tmp_path / "hmac.key").st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key  # generated once


@pytest.mark.parametrize("damage", ["edit", "delete", "insert", "reorder", "truncate", "forge-append"])
def test_every_kind_of_tampering_is_named(tmp_path: Path, damage: str) -> None:
    key = write_log(tmp_path, 10)
    path = tmp_path / CURRENT
    ls = lines(path)
    if damage == "edit":
        ls[4] = ls[4].replace(b'"status":200', b'"status":201')
    elif damage == "delete":
        del ls[4]
    elif damage == "insert":
        ls.insert(4, ls[7])
    elif damage == "reorder":
        ls[4], ls[5] = ls[5], ls[4]
    elif damage == "truncate":
        ls = ls[:7]
    elif damage == "forge-append":  # a made-up record with plausible seq/prev but no key to MAC it
        last = json.loads(ls[-1])
        ls.append(
            json.dumps({**last, "seq": last["seq"] + 1, "prev": last["mac"], "mac": "0" * 64}).encode()
            + b"\n"
        )
    path.write_bytes(b"".join(ls))
    rep = verify_log(tmp_path, key)
    assert not rep.ok
    first = rep.problems[0]
    if damage == "truncate":
        assert first.file == "audit.head" and "truncated" in first.reason, rep.problems
    elif damage == "forge-append":
        assert (first.file, first.line, first.seq) == (CURRENT, 11, 11), rep.problems
    else:
        assert (first.file, first.line) == (CURRENT, 5), rep.problems
    if damage == "edit":
        assert first.seq == 5 and "MAC mismatch" in first.reason and len(rep.problems) == 1


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_rotation_compresses_and_chain_spans_segments(tmp_path: Path, compression: str) -> None:
    key = write_log(tmp_path, 200, rotate_bytes=4096, compression=compression)
    segs = segments(tmp_path)
    closed = [p for p in segs if p.name != CURRENT]
    assert len(closed) >= 3 and all(
        p.name.endswith(".zst" if compression == "zstd" else ".gz") for p in closed
    )
    rep = verify_log(tmp_path, key)
    assert rep.ok and rep.records == 200, rep.problems
    # Remove a whole closed segment from the middle: the break is named at the next segment's first line.
    closed[1].unlink()
    rep = verify_log(tmp_path, key)
    assert not rep.ok and rep.problems[0].file == closed[2].name and rep.problems[0].line == 1


def test_edit_inside_compressed_segment(tmp_path: Path) -> None:
    key = write_log(tmp_path, 100, rotate_bytes=4096)
    seg = next(p for p in segments(tmp_path) if p.name.endswith(".zst"))
    text = zstandard.ZstdDecompressor().stream_reader(seg.open("rb")).read().splitlines(keepends=True)
    text[2] = text[2].replace(b'"principal":"admin"', b'"principal":"mallory"')
    seg.write_bytes(zstandard.ZstdCompressor().compress(b"".join(text)))
    rep = verify_log(tmp_path, key)
    assert [(p.file, p.line) for p in rep.problems] == [(seg.name, 3)]


def test_query_filters(tmp_path: Path) -> None:
    write_log(tmp_path, 30)
    found, total = run_query(tmp_path, Query(result="NoSuchKey"))
    assert total == 10 and all(r["error"] == "NoSuchKey" for r in found)
    assert run_query(tmp_path, Query(result="ok"))[1] == 20
    assert run_query(tmp_path, Query(result="404"))[1] == 10
    assert run_query(tmp_path, Query(since=1010.0, until=1019.0))[1] == 10
    recs, total = run_query(tmp_path, Query(limit=5))
    assert total == 30 and [r["seq"] for r in recs] == [26, 27, 28, 29, 30]
    assert parse_time("2026-01-01T00:00:00Z") == 1767225600.0
    assert abs(parse_time("1h", now=7200.0) - 3600.0) < 1e-9
    with pytest.raises(ValueError):
        Query.from_params({"colour": "red"})


def test_security_monitor_throttles_and_flags_spikes() -> None:
    now = [0.0]
    alerts: list[dict[str, Any]] = []
    mon = SecurityMonitor(
        alerts.append,
        auth_fail_limit=3,
        auth_fail_window=10,
        throttle_seconds=5,
        deny_spike_limit=4,
        deny_spike_window=10,
        clock=lambda: now[0],
    )
    for _ in range(2):
        mon.observe("10.0.0.1", 403, "SignatureDoesNotMatch", "", "AK")
    assert not mon.throttled("10.0.0.1")
    now[0] = 20.0  # the old failures fall out of the window
    for _ in range(2):
        mon.observe("10.0.0.1", 403, "InvalidAccessKeyId", "", "AK")
    assert not mon.throttled("10.0.0.1") and not alerts
    mon.observe("10.0.0.1", 403, "SignatureDoesNotMatch", "", "AK")
    assert mon.throttled("10.0.0.1") and not mon.throttled("10.0.0.2")
    assert alerts[-1]["action"] == "AuthFailureThrottle" and alerts[-1]["source_ip"] == "10.0.0.1"
    now[0] = 26.0
    assert not mon.throttled("10.0.0.1")  # the throttle expires
    for _ in range(4):
        mon.observe("10.0.0.9", 403, "AccessDenied", "bob", "AKB")
    assert alerts[-1]["action"] == "AccessDeniedSpike" and "bob" in alerts[-1]["detail"]
    for _ in range(10):
        mon.observe("10.0.0.9", 403, "AccessDenied", "bob", "AKB")
    assert sum(a["action"] == "AccessDeniedSpike" for a in alerts) == 1  # once per window


def test_settings_validation() -> None:
    assert parse_audit_table(None).enabled
    s = parse_audit_table(
        {"rotate_bytes": 4096, "webhook_url": "http://127.0.0.1:1/x", "compression": "gzip"}
    )
    assert s.rotate_bytes == 4096 and s.compression == "gzip"
    for bad in (
        {"rotate_bytes": "big"},
        {"compression": "lz4"},
        {"syslog": "udp://nohost"},
        {"nope": 1},
        {"s3_endpoint": "http://x:1"},
        {"webhook_url": "ftp://x"},
    ):
        with pytest.raises(ValueError, match="audit"):
            parse_audit_table(bad)
    assert "hunter2" not in repr(
        parse_audit_table(
            {"s3_endpoint": "http://h:1", "s3_bucket": "b", "s3_access_key": "a", "s3_secret_key": "hunter2"}
        )
    )


def test_gzip_segments_are_plain_gzip(tmp_path: Path) -> None:
    write_log(tmp_path, 100, rotate_bytes=4096, compression="gzip")
    seg = next(p for p in segments(tmp_path) if p.name.endswith(".gz"))
    first = json.loads(gzip.decompress(seg.read_bytes()).splitlines()[0])
    assert first["seq"] == 1


def test_audit_table_through_config_and_worker_handoff(tmp_path: Path) -> None:
    from rs3gw.config import ConfigError, load_settings, settings_from_json, settings_to_json

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[audit]\nrotate_bytes = 8192\nsyslog = "udp://127.0.0.1:5514"\ns3_endpoint = "http://h:1"\n'
        's3_bucket = "b"\ns3_access_key = "AK"\ns3_secret_key = "SKSKSKSK"\n'
    )
    flags = {"data_dir": str(tmp_path / "d"), "access_key": "AKAKAKAK", "secret_key": "SKSKSKSKSK"}
    s = load_settings(flags, {}, cfg)
    assert s.audit.rotate_bytes == 8192 and s.audit.syslog == "udp://127.0.0.1:5514" and s.audit.enabled
    assert settings_from_json(settings_to_json(s)).audit == s.audit  # --workers N hand-off
    cfg.write_text("[audit]\nrotate_bytez = 1\n")
    with pytest.raises(ConfigError, match=r"audit\.rotate_bytez: unknown key"):
        load_settings(flags, {}, cfg)


def test_exempt_addresses_are_never_throttled() -> None:
    alerts: list[dict[str, Any]] = []
    mon = SecurityMonitor(
        alerts.append,
        auth_fail_limit=2,
        auth_fail_window=10,
        throttle_seconds=5,
        deny_spike_limit=4,
        deny_spike_window=10,
        throttle_exempt="127.0.0.1, 10.0.0.0/8",
    )
    for ip in ("127.0.0.1", "10.1.2.3", "192.0.2.7"):
        for _ in range(3):
            mon.observe(ip, 403, "SignatureDoesNotMatch", "", "AK")
    assert not mon.throttled("127.0.0.1") and not mon.throttled("10.1.2.3")
    assert mon.throttled("192.0.2.7") and len(alerts) == 1
    with pytest.raises(ValueError, match="throttle_exempt"):
        parse_audit_table({"throttle_exempt": "not-an-ip"})

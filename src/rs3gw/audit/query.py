"""Filtering the chain for ``rs3gw audit query`` and ``GET /_rs3gw/admin/audit/events`` (same code)."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rs3gw.audit.chain import iter_records

_RELATIVE_RE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
QUERY_PARAMS = ("since", "until", "user", "action", "bucket", "result", "limit")


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds, ISO 8601 (``2026-12-02T10:00:00Z`` or a date) or an age like ``15m``/``2h``/``7d``."""
    text = text.strip()
    m = _RELATIVE_RE.fullmatch(text)
    if m:
        return (time.time() if now is None else now) - float(m[1]) * _UNIT[m[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use epoch seconds, ISO 8601, or an age like 15m)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Query:
    since: float | None = None
    until: float | None = None
    user: str | None = None  # principal name or access key id
    action: str | None = None  # AWS operation name, or an alert/system action
    bucket: str | None = None
    result: str | None = None  # ok | error | an S3 error code | an HTTP status
    limit: int | None = None  # the newest LIMIT matches

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Query:
        for name in params:
            if name not in QUERY_PARAMS:
                raise ValueError(f"unknown query parameter {name!r} (known: {', '.join(QUERY_PARAMS)})")
        limit = params.get("limit")
        if limit is not None and (not limit.isdigit() or int(limit) < 1):
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        return cls(
            since=parse_time(params["since"]) if params.get("since") else None,
            until=parse_time(params["until"]) if params.get("until") else None,
            user=params.get("user") or None,
            action=params.get("action") or None,
            bucket=params.get("bucket") or None,
            result=params.get("result") or None,
            limit=int(limit) if limit is not None else None,
        )

    def matches(self, rec: Mapping[str, Any]) -> bool:
        ts = rec.get("ts", 0.0)
        if self.since is not None and ts < self.since:
            return False
        if self.until is not None and ts > self.until:
            return False
        if self.user is not None and self.user not in (rec.get("principal"), rec.get("access_key")):
            return False
        if self.action is not None and rec.get("action") != self.action:
            return False
        if self.bucket is not None and rec.get("bucket") != self.bucket:
            return False
        return self.result is None or _result_matches(self.result, rec)


def _result_matches(want: str, rec: Mapping[str, Any]) -> bool:
    status, error = int(rec.get("status") or 0), str(rec.get("error") or "")
    if want == "ok":
        return 0 < status < 400 and not error
    if want == "error":
        return status >= 400 or bool(error)
    if want.isdigit():
        return status == int(want)
    return error == want


def run_query(directory: Path, query: Query) -> tuple[list[dict[str, Any]], int]:
    """(matching records in chain order — the newest ``limit`` when limited —, total matches)."""
    out: deque[dict[str, Any]] = deque(maxlen=query.limit)
    total = 0
    for rec in iter_records(directory):
        if query.matches(rec):
            out.append(rec)
            total += 1
    return list(out), total

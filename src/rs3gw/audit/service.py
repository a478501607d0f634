"""One process's audit machinery: turns request events into records, feeds the writer, sinks and the
security monitor. Built by wiring.py; the ASGI app only sees ``observe`` and ``throttled``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from rs3gw.audit.chain import load_or_create_key
from rs3gw.audit.query import Query, run_query
from rs3gw.audit.record import RequestLike
from rs3gw.audit.security import SecurityMonitor
from rs3gw.audit.settings import AuditSettings
from rs3gw.audit.sinks import S3Sink, Sink, SyslogSink, WebhookSink
from rs3gw.audit.verify import VerifyReport, verify_log
from rs3gw.audit.writer import ChainWriter
from rs3gw.timefmt import iso8601


def audit_dir(settings: AuditSettings, data_dir: Path) -> Path:
    return Path(settings.dir).expanduser() if settings.dir else data_dir / "audit"


def _record(kind: str, action: str, ts: float, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": kind,
        "time": iso8601(ts),
        "ts": round(ts, 6),
        "request_id": "",
        "principal": "",
        "access_key": "",
        "action": action,
        "bucket": None,
        "key": None,
        "status": 0,
        "error": "",
        "source_ip": "",
        "pid": os.getpid(),
    }
    rec.update(fields)
    return rec


class AuditService:
    def __init__(self, settings: AuditSettings, data_dir: Path, fsync: bool) -> None:
        self.settings = settings
        self.directory = audit_dir(settings, data_dir)
        self.key = load_or_create_key(self.directory)
        self.sinks: list[Sink] = []
        s = settings
        if s.webhook_url:
            self.sinks.append(WebhookSink(s.webhook_url, s.sink_queue_size, s.sink_retries))
        if s.syslog:
            self.sinks.append(SyslogSink(s.syslog, s.sink_queue_size, s.sink_retries))
        if s.s3_endpoint:
            self.sinks.append(
                S3Sink(
                    s.s3_endpoint,
                    s.s3_bucket,
                    s.s3_prefix,
                    s.s3_region,
                    s.s3_access_key,
                    s.s3_secret_key,
                    s.sink_queue_size,
                    s.sink_retries,
                )
            )
        self.writer = ChainWriter(
            self.directory,
            self.key,
            rotate_bytes=s.rotate_bytes,
            rotate_seconds=s.rotate_seconds,
            compression=s.compression,
            fsync=fsync,
            queue_size=s.queue_size,
            on_written=self._forward,
        )
        self.security = SecurityMonitor(
            self._alert,
            auth_fail_limit=s.auth_fail_limit,
            auth_fail_window=s.auth_fail_window,
            throttle_seconds=s.throttle_seconds,
            deny_spike_limit=s.deny_spike_limit,
            deny_spike_window=s.deny_spike_window,
            throttle_exempt=s.throttle_exempt,
        )
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Threads start in the serving process (after uvicorn spawned it), not at import."""
        if self._started:
            return
        self._started = True
        self.writer.start()
        for sink in self.sinks:
            sink.start()
        atexit.register(self.close)
        self.writer.submit(_record("system", "Startup", time.time()))

    async def start_async(self) -> None:
        self.start()

    async def close_async(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        if not self._started or self._closed:
            return
        self._closed = True
        self.writer.submit(_record("system", "Shutdown", time.time()))
        self.writer.close()
        for sink in self.sinks:
            sink.close()

    def observe(self, event: RequestLike) -> None:
        """Request observer: O(1), never blocks (a full queue drops and counts).

        The event itself is queued (it is immutable): the writer thread builds and encodes its
        record, so the request path pays one append instead of building a dict per request."""
        self.writer.submit(event)
        if event.status >= 400:
            self.security.observe(
                event.client_ip, event.status, event.error_code, event.principal, event.access_key
            )

    def throttled(self, client_ip: str) -> bool:
        return self.security.throttled(client_ip)

    def _alert(self, fields: dict[str, Any]) -> None:
        self.writer.submit(_record("alert", str(fields.pop("action")), time.time(), **fields))

    def _forward(self, lines: list[str]) -> None:
        """The sinks get records as dicts, decoded from the written lines only when there are sinks."""
        if not self.sinks:
            return
        batch = [json.loads(line) for line in lines]
        for sink in self.sinks:
            sink.offer(batch)

    # Blocking helpers for the admin API (run in a thread) and tests.

    def query(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        self.writer.flush(2.0)
        return run_query(self.directory, query)

    def verify(self) -> VerifyReport:
        self.writer.flush(2.0)
        return verify_log(self.directory, self.key)

    def stats(self) -> dict[str, Any]:
        w = self.writer
        return {
            "directory": str(self.directory),
            "written": w.written,
            "dropped": w.dropped,
            "write_errors": w.errors,
            "queued": w.queued(),
            "alerts": self.security.alerts,
            "throttled_requests": self.security.throttled_requests,
            "sinks": {sink.name_: sink.stats() for sink in self.sinks},
        }

"""Forwarding copies of the chain to a webhook, syslog or an S3 bucket.

Each sink is its own thread with its own bounded queue: a slow or dead destination fills only that
queue, after which batches are dropped and counted, so nothing upstream ever waits on it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from rs3gw.auth import sigv4

log = logging.getLogger("rs3gw.audit")
Record = dict[str, Any]
_BATCH = 500
_TIMEOUT = 5.0
# Explicit: audit records go where configured, never through an ambient http_proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Sink(threading.Thread, ABC):
    name_: str = "sink"

    def __init__(self, queue_size: int, retries: int) -> None:
        super().__init__(name=f"rs3gw-audit-{self.name_}", daemon=True)
        self.queue: queue.Queue[list[Record] | None] = queue.Queue(queue_size)
        self.retries = retries
        self.sent = 0
        self.dropped = 0
        self.failures = 0  # failed attempts, retried or not

    def offer(self, batch: list[Record]) -> None:
        try:
            self.queue.put_nowait(batch)
        except queue.Full:
            self.dropped += len(batch)

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failures": self.failures,
            "queued": self.queue.qsize(),
        }

    def close(self, timeout: float = 2.0) -> None:
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            return
        self.join(timeout)

    def run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            for start in range(0, len(batch), _BATCH):
                self._deliver(batch[start : start + _BATCH])

    def _deliver(self, batch: list[Record]) -> None:
        delay = 0.2
        for attempt in range(1, self.retries + 1):
            try:
                self.send(batch)
                self.sent += len(batch)
                return
            except Exception as exc:
                self.failures += 1
                if attempt == self.retries:
                    self.dropped += len(batch)
                    log.warning("audit: %s sink dropped %d records: %s", self.name_, len(batch), exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    @abstractmethod
    def send(self, batch: list[Record]) -> None:
        """Deliver or raise; retries are the caller's business."""


class WebhookSink(Sink):
    name_ = "webhook"

    def __init__(self, url: str, queue_size: int, retries: int) -> None:
        super().__init__(queue_size, retries)
        self.url = url

    def send(self, batch: list[Record]) -> None:
        body = json.dumps(batch, separators=(",", ":")).encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"content-type": "application/json"}
        )
        with _OPENER.open(req, timeout=_TIMEOUT) as resp:
            resp.read()


class SyslogSink(Sink):
    """RFC 5424 messages, facility local0; alerts go out as warnings, everything else as info."""

    name_ = "syslog"

    def __init__(self, address: str, queue_size: int, retries: int) -> None:
        super().__init__(queue_size, retries)
        self.address = urlsplit(address)
        self.hostname = socket.gethostname() or "-"
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            a = self.address
            if a.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.connect(a.path)
            elif a.scheme == "tcp":
                sock = socket.create_connection((a.hostname or "", a.port or 514), _TIMEOUT)
            else:
                family, _, _, _, addr = socket.getaddrinfo(a.hostname, a.port or 514, type=socket.SOCK_DGRAM)[
                    0
                ]
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.connect(addr)
            sock.settimeout(_TIMEOUT)
            self._sock = sock
        return self._sock

    def send(self, batch: list[Record]) -> None:
        try:
            sock = self._socket()
            for rec in batch:
                severity = 4 if rec.get("type") == "alert" else 6
                msg = (
                    f"<{16 * 8 + severity}>1 {rec.get('time', '-')} {self.hostname} rs3gw-audit {os.getpid()} "
                    f"{rec.get('type', 'request')} - {json.dumps(rec, separators=(',', ':'))}"
                ).encode()
                if self.address.scheme == "tcp":
                    sock.sendall(f"{len(msg)} ".encode() + msg)  # RFC 6587 octet counting
                else:
                    sock.send(msg)
        except OSError:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            raise


class S3Sink(Sink):
    """Each batch becomes one JSON-lines object, PUT with a SigV4 signature to a path-style endpoint."""

    name_ = "s3"

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str,
        region: str,
        access_key: str,
        secret_key: str,
        queue_size: int,
        retries: int,
    ) -> None:
        super().__init__(queue_size, retries)
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(endpoint).netloc
        self.bucket, self.prefix, self.region = bucket, prefix, region
        self.access_key, self._secret = access_key, secret_key

    def send(self, batch: list[Record]) -> None:
        now = datetime.now(UTC)
        first = batch[0].get("seq", 0)
        key = f"{self.prefix}{now:%Y/%m/%d}/{int(first):012d}-{os.getpid()}-{os.urandom(4).hex()}.jsonl"
        body = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in batch)
        path = "/" + quote(self.bucket) + "/" + quote(key)
        amz_date, date8 = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = sigv4.sha256_hex(body)
        headers = {
            "host": self.host,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload,
            "content-type": "application/x-ndjson",
        }
        signed = sorted(headers)
        canon = sigv4.canonical_request("PUT", sigv4.canonical_uri(path), "", headers, signed, payload)
        scope = sigv4.scope(date8, self.region)
        sig = sigv4.signature(
            sigv4.signing_key(self._secret, date8, self.region), sigv4.string_to_sign(amz_date, scope, canon)
        )
        headers["authorization"] = (
            f"{sigv4.ALGORITHM} Credential={self.access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        req = urllib.request.Request(self.endpoint + path, data=body, method="PUT", headers=headers)
        with _OPENER.open(req, timeout=_TIMEOUT) as resp:
            resp.read()

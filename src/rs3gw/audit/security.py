"""Security events seen in the request stream: signature brute force and bursts of AccessDenied.

Runs on the event loop (observer and pre-auth gate), so every step is O(1) amortised and memory is
bounded. State is per server process: with ``--workers N`` an attacker spread over N processes gets
up to N times the limit before every process has throttled it.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

AUTH_FAILURES = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId"})
_MAX_TRACKED_IPS = 10_000


class SecurityMonitor:
    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        *,
        auth_fail_limit: int,
        auth_fail_window: float,
        throttle_seconds: float,
        deny_spike_limit: int,
        deny_spike_window: float,
        throttle_exempt: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.emit = emit
        self.exempt = [
            ipaddress.ip_network(p.strip(), strict=False) for p in throttle_exempt.split(",") if p.strip()
        ]
        self.auth_fail_limit = auth_fail_limit
        self.auth_fail_window = auth_fail_window
        self.throttle_seconds = throttle_seconds
        self.deny_spike_limit = deny_spike_limit
        self.deny_spike_window = deny_spike_window
        self.clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}  # ip -> monotonic time the throttle ends
        self._denied: deque[tuple[float, str, str]] = deque()  # (time, ip, principal)
        self._deny_alerted_until = 0.0
        self.throttled_requests = 0
        self.alerts = 0

    def throttled(self, ip: str) -> bool:
        """The pre-signature gate: one dict lookup per request."""
        until = self._blocked.get(ip)
        if until is None:
            return False
        if self.clock() >= until:
            del self._blocked[ip]
            return False
        self.throttled_requests += 1
        return True

    def observe(self, ip: str, status: int, error_code: str, principal: str, access_key: str) -> None:
        if error_code in AUTH_FAILURES and ip:
            self._auth_failure(ip, access_key)
        elif error_code == "AccessDenied":
            self._access_denied(ip, principal)

    def _exempt(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.exempt)

    def _auth_failure(self, ip: str, access_key: str) -> None:
        if self.exempt and self._exempt(ip):
            return
        now = self.clock()
        fails = self._fails.pop(ip, None)  # re-insert at the end: the dict stays in least-recent order
        if fails is None:
            fails = deque(maxlen=self.auth_fail_limit)
            if len(self._fails) >= _MAX_TRACKED_IPS:
                del self._fails[next(iter(self._fails))]
        fails.append(now)
        if len(fails) >= self.auth_fail_limit and now - fails[0] <= self.auth_fail_window:
            if len(self._blocked) >= _MAX_TRACKED_IPS:
                del self._blocked[next(iter(self._blocked))]
            self._blocked[ip] = now + self.throttle_seconds
            self.alerts += 1
            self.emit(
                {
                    "type": "alert",
                    "action": "AuthFailureThrottle",
                    "source_ip": ip,
                    "access_key": access_key,
                    "status": 503,
                    "error": "SlowDown",
                    "detail": f"{len(fails)} signature failures within {self.auth_fail_window:g}s; "
                    f"throttled for {self.throttle_seconds:g}s",
                    "count": len(fails),
                }
            )
            return
        self._fails[ip] = fails

    def _access_denied(self, ip: str, principal: str) -> None:
        now = self.clock()
        window = self._denied
        window.append((now, ip, principal))
        while window and now - window[0][0] > self.deny_spike_window:
            window.popleft()
        if len(window) > self.deny_spike_limit:
            window.popleft()
        if len(window) >= self.deny_spike_limit and now >= self._deny_alerted_until:
            self._deny_alerted_until = now + self.deny_spike_window  # one alert per window, not per request
            self.alerts += 1
            ips = Counter(w[1] for w in window).most_common(5)
            users = Counter(w[2] for w in window).most_common(5)
            self.emit(
                {
                    "type": "alert",
                    "action": "AccessDeniedSpike",
                    "source_ip": ips[0][0] if ips else "",
                    "principal": users[0][0] if users else "",
                    "status": 403,
                    "error": "AccessDenied",
                    "detail": f"{len(window)} AccessDenied within {self.deny_spike_window:g}s; "
                    f"top sources {dict(ips)}, top principals {dict(users)}",
                    "count": len(window),
                }
            )

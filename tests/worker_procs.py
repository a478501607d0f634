"""What a ``serve --workers N`` process tree looks like from /proc (psutil is not in CI): its
worker processes, and which of them holds which TCP socket of the server's port."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def children(pid: int) -> list[int]:
    """The server's worker processes (uvicorn's spawn machinery also starts a resource tracker,
    which is not one)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
            kids.append(int(entry))
    return sorted(kids)


def socket_inodes(port: int, state: str | None = None, peer_port: int | None = None) -> set[str]:
    """Inodes of the local TCP sockets on ``port`` (the test servers listen on 127.0.0.1),
    optionally only those in ``state`` or connected from ``peer_port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) != port:
            continue
        if state is not None and fields[3] != state:
            continue
        if peer_port is not None and int(fields[2].split(":")[1], 16) != peer_port:
            continue
        found.add(fields[9])
    return found


def sockets_held(pid: int, inodes: set[str]) -> int:
    """How many of ``inodes`` process ``pid`` has open."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n

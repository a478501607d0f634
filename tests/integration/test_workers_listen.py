"""`serve --workers N`: every worker listens on its own SO_REUSEPORT socket, so the kernel spreads a
client's keep-alive connections over the workers. With one shared socket the first worker to call
accept(2) took them, as unevenly as 16/0 on two workers, and one core did all the work."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from conftest import start_server

LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def _children(pid: int) -> list[int]:
    """The server's worker processes (uvicorn's spawn machinery also starts a resource tracker)."""
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


def _socket_inodes(port: int, state: str) -> set[str]:
    """Inodes of the local TCP sockets on ``port`` in ``state`` (the server listens on 127.0.0.1)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return found


def _held(pid: int, inodes: set[str]) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def test_each_worker_listens_and_connections_spread(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--workers", "2")
    try:
        deadline = time.time() + 20  # /ready answered once one worker was up; the other may still start
        while True:
            workers = _children(srv.proc.pid)
            listening = [_held(w, _socket_inodes(srv.port, LISTEN)) for w in workers]
            if listening == [1, 1]:
                break
            assert time.time() < deadline, (workers, listening)
            time.sleep(0.1)
        assert _held(srv.proc.pid, _socket_inodes(srv.port, LISTEN)) == 0  # the parent holds the port only
        conns = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(32)]
        try:
            for c in conns:  # a request on each, so that every connection has been accepted
                c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            established = _socket_inodes(srv.port, ESTABLISHED)
            held = [_held(w, established) for w in workers]
            # Spread by address hash: all 32 on one of two workers has odds of 2 in 2**32.
            assert sum(held) == 32 and min(held) > 0, held
        finally:
            for c in conns:
                c.close()
    finally:
        srv.stop()

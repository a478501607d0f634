"""`serve --workers N`: every worker listens on its own SO_REUSEPORT socket, so the kernel spreads a
client's keep-alive connections over the workers. With one shared socket the first worker to call
accept(2) took them, as unevenly as 16/0 on two workers, and one core did all the work."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psutil

from conftest import start_server


def _workers(pid: int) -> list[psutil.Process]:
    """The server's worker processes (uvicorn's spawn machinery also starts a resource tracker)."""
    deadline = time.time() + 10
    while True:
        kids = [p for p in psutil.Process(pid).children() if "resource_tracker" not in " ".join(p.cmdline())]
        if len(kids) == 2 or time.time() > deadline:
            return kids
        time.sleep(0.1)


def _tcp(proc: psutil.Process, port: int, status: str) -> int:
    return sum(1 for c in proc.net_connections("tcp") if c.laddr.port == port and c.status == status)


def test_each_worker_listens_and_connections_spread(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--workers", "2")
    try:
        workers = _workers(srv.proc.pid)
        assert len(workers) == 2
        deadline = time.time() + 20  # /ready answered once one worker was up; the other may still start
        while (listening := [_tcp(w, srv.port, psutil.CONN_LISTEN) for w in workers]) != [1, 1]:
            assert time.time() < deadline, listening
            time.sleep(0.1)
        assert _tcp(psutil.Process(srv.proc.pid), srv.port, psutil.CONN_LISTEN) == 0  # holds the port only
        conns = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(32)]
        try:
            for c in conns:  # a request on each, so that every connection has been accepted
                c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            held = [_tcp(w, srv.port, psutil.CONN_ESTABLISHED) for w in workers]
            # Spread by address hash: all 32 on one of two workers has odds of 2 in 2**32.
            assert sum(held) == 32 and min(held) > 0, held
        finally:
            for c in conns:
                c.close()
    finally:
        srv.stop()

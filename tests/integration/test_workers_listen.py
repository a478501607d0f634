"""`serve --workers N`: every worker listens on its own SO_REUSEPORT socket, so the kernel spreads a
client's keep-alive connections over the workers. With one shared socket the first worker to call
accept(2) took them, as unevenly as 16/0 on two workers, and one core did all the work."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from conftest import start_server
from worker_procs import ESTABLISHED, LISTEN, children, socket_inodes, sockets_held


def test_each_worker_listens_and_connections_spread(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--workers", "2")
    try:
        deadline = time.time() + 20  # /ready answered once one worker was up; the other may still start
        while True:
            workers = children(srv.proc.pid)
            listening = [sockets_held(w, socket_inodes(srv.port, LISTEN)) for w in workers]
            if listening == [1, 1]:
                break
            assert time.time() < deadline, (workers, listening)
            time.sleep(0.1)
        assert (
            sockets_held(srv.proc.pid, socket_inodes(srv.port, LISTEN)) == 0
        )  # the parent holds the port only
        conns = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(32)]
        try:
            for c in conns:  # a request on each, so that every connection has been accepted
                c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            established = socket_inodes(srv.port, ESTABLISHED)
            held = [sockets_held(w, established) for w in workers]
            # Spread by address hash: all 32 on one of two workers has odds of 2 in 2**32.
            assert sum(held) == 32 and min(held) > 0, held
        finally:
            for c in conns:
                c.close()
    finally:
        srv.stop()

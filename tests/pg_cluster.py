"""A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, loopback only, stopped at exit.

PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user
(``postgres`` if it exists, else ``nobody``). Authentication is ``trust`` on 127.0.0.1 only.
Where PostgreSQL is not installed the tests that need it skip with the reason, unless
RS3GW_REQUIRE_POSTGRES=1 (set by scripts/check.sh after installing it), where they fail.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "rs3gw"
REQUIRE_ENV = "RS3GW_REQUIRE_POSTGRES"
# RS3GW_TEST_METADATA=postgresql runs every integration test's server over PostgreSQL.
METADATA_ENV = "RS3GW_TEST_METADATA"


def pg_bin_dir() -> Path | None:
    """Where initdb/pg_ctl/postgres live: Debian's versioned dir (newest first) or the PATH."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl") and shutil.which("postgres"):
        return Path(found).resolve().parent
    return None


def _version_key(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None  # the unprivileged user when we are root
    databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "rs3gw") -> str:
        """A fresh, empty database; returns its DSN (each test server gets its own)."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        self.databases.append(name)
        return self.dsn(name)

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 "
            "-c shared_buffers=64MB"
        )
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                "--no-sync", "-E", "UTF8", "--locale=C",
            ),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                "-o", opts, "-w", "-t", "60", "start",
            ),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


def start_cluster() -> PgCluster:
    """Start a cluster, or raise RuntimeError saying why it cannot be."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no initdb/pg_ctl/postgres; apt-get install postgresql)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"psycopg is not installed: {exc}") from None
    run_as = _unprivileged_user()
    if run_as is not None and shutil.which("runuser") is None:
        raise RuntimeError("running as root without runuser to start PostgreSQL as another user")
    root = Path(tempfile.mkdtemp(prefix="rs3gw-pg-"))
    if run_as is not None:
        pw = pwd.getpwnam(run_as)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(bin_dir, root, _free_port(), run_as)
    try:
        cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = root / "server.log"
        detail = getattr(exc, "stderr", b"") or b""
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        cluster.stop()
        raise RuntimeError(
            f"PostgreSQL did not start: {exc}: {detail.decode(errors='replace')}{tail}"
        ) from None
    atexit.register(cluster.stop)  # an interrupted session still stops it
    _wait_accepting(cluster)
    return cluster


def _wait_accepting(cluster: PgCluster, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(cluster.dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


_CLUSTER: list[PgCluster | str] = []  # the started cluster, or why it could not start (tried once)


def shared_cluster() -> PgCluster:
    """The session's one cluster, started on first use (skip/fail when impossible)."""
    if not _CLUSTER:
        try:
            _CLUSTER.append(start_cluster())
        except RuntimeError as exc:
            _CLUSTER.append(str(exc))
    got = _CLUSTER[0]
    if isinstance(got, str):
        skip_or_fail(got)
        raise AssertionError("unreachable")
    return got


def stop_shared_cluster() -> None:
    if _CLUSTER and isinstance(_CLUSTER[0], PgCluster):
        _CLUSTER[0].stop()
    _CLUSTER.clear()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    yield shared_cluster()


_SERVER_DBS: dict[Path, str] = {}  # data dir -> its database, so a restarted server finds its state


def metadata_args(data_dir: Path, extra_args: tuple[str, ...]) -> list[str]:
    """``--metadata <dsn>`` for a test server when RS3GW_TEST_METADATA=postgresql (and the test did
    not choose a store itself): one database per data directory."""
    if os.environ.get(METADATA_ENV, "").lower() not in ("postgresql", "postgres", "pg"):
        return []
    if any(a == "--metadata" or a.startswith("--metadata=") for a in extra_args):
        return []
    key = data_dir.resolve()
    if key not in _SERVER_DBS:
        # One gateway per database here: freed blobs may go at once, as tests that count them expect.
        _SERVER_DBS[key] = shared_cluster().create_database("srv") + "?gc_grace=0"
    return ["--metadata", _SERVER_DBS[key]]


def server_metadata(data_dir: Path) -> str | None:
    """The PostgreSQL DSN ``metadata_args`` gave the servers of ``data_dir``, or None (SQLite)."""
    return _SERVER_DBS.get(data_dir.resolve())


def metadata_env(data_dir: Path) -> dict[str, str]:
    """``RS3GW_METADATA`` for an offline command (``rs3gw heal``/``storage report``/...) on a test
    server's data directory, so it opens the store that server used; empty under SQLite."""
    dsn = server_metadata(data_dir)
    return {"RS3GW_METADATA": dsn} if dsn else {}

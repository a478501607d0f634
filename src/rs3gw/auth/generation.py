"""A counter every process of one data directory shares, bumped after each IAM change.

With ``serve --workers N`` each worker has its own key map (``auth.users.KeyRing``), and the
``rs3gw admin user|key`` commands write the metadata store from yet another process. Whoever
changes users, keys or identity policies bumps ``DATA_DIR/.rs3gw/iam-generation`` (8 bytes,
little-endian) after the store commit; every serving process maps that file read-only and compares
it with the value its key map was loaded at before each signature check. Reading a mapped page
is a memory load, not a system call, so the request path pays nothing until the counter moves.

The counter itself is ``rs3gw.shared_counter``. Processes on other hosts (sharing a PostgreSQL
store) cannot see it and keep relying on the periodic reload (``--iam-refresh-interval``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rs3gw.shared_counter import SharedCounter

log = logging.getLogger("rs3gw.iam")

GENERATION_RELPATH = Path(".rs3gw") / "iam-generation"


class IamGeneration(SharedCounter):
    """The data directory's IAM change counter."""

    def __init__(self, data_dir: Path) -> None:
        path = data_dir / GENERATION_RELPATH
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(path, owner_like=data_dir)


def open_generation(data_dir: Path) -> IamGeneration | None:
    """The counter of ``data_dir``, or None (with a warning) where it cannot be made, such as a
    read-only data directory: IAM changes then reach other processes within the refresh interval.
    None, silently, for a data dir that does not exist: no server runs on it to be told."""
    if not data_dir.is_dir():
        return None
    try:
        return IamGeneration(data_dir)
    except OSError as exc:
        log.warning(
            "IAM generation file under %s unusable (%s): other processes see IAM changes only on "
            "their periodic reload",
            data_dir,
            exc,
        )
        return None

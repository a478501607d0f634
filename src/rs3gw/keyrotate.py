"""``rs3gw admin key-rotate``: a new version of every key-encryption key, then every stored data key
re-wrapped under it; object data is never re-encrypted.

Restartable: the targets of a rotation are recorded in ``keys.rotation.json`` before any blob is
touched and removed when the pass completes, so a run after a crash finishes the same rotation
instead of starting another. Each blob's re-wrap is itself crash-safe (see ``blobs.encrypted``),
and a running server keeps serving throughout (old key versions stay in the key file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rs3gw.blobs.encrypted import rewrap_file
from rs3gw.blobs.keys import KeyError_, LocalKeyProvider
from rs3gw.blobs.smallpack import SmallPack
from rs3gw.config import Settings
from rs3gw.errors import S3Error

STATE_FILE = "keys.rotation.json"


def add_key_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common_args: Callable[[argparse.ArgumentParser], None],
    resolve_settings: Callable[[argparse.Namespace], Settings],
) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Returns the ``admin`` subcommands, which ``rs3gw admin user|key`` join."""
    admin = sub.add_parser(
        "admin",
        help="administration: buckets, usage, users, keys, config, heal, backup, key rotation",
        description="Buckets and usage (online with --endpoint, else offline on the data directory), "
        "store-managed users and keys, effective configuration, scrubbing and backups.",
    )
    asub: argparse._SubParsersAction = admin.add_subparsers(  # type: ignore[type-arg]
        dest="admin_command", metavar="COMMAND", required=True
    )
    p = asub.add_parser(
        "key-rotate",
        help="rotate the key-encryption keys and re-wrap every data key (no data re-encrypted)",
        description="Adds a new version of each key-encryption key (or of --key NAME only) and "
        "re-wraps the data key of every encrypted blob under it. Safe while the server runs; an "
        "interrupted run is finished by running it again.",
    )
    add_common_args(p)
    p.add_argument("--key", action="append", metavar="NAME", help="rotate only this key (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    def run(args: argparse.Namespace) -> int:
        return key_rotate(resolve_settings(args), args.key, args.json)

    p.set_defaults(func=run)
    return asub


def _blob_files(data_dir: Path) -> list[tuple[str, str]]:
    root = data_dir / "blobs"
    if not root.is_dir():
        return []
    return [(str(p), p.name) for sub in sorted(root.iterdir()) if sub.is_dir() for p in sorted(sub.iterdir())]


def _rewrap_packed(keys: LocalKeyProvider, pack: SmallPack, tmp_dir: Path, blob_id: str, fsync: bool) -> str:
    """A small blob is a row of ``smallblobs.db``: re-wrapped through a scratch copy by the same
    code as a file (one header format, one implementation), then its row replaced in one commit."""
    data = pack.get(blob_id)
    if data is None:
        raise FileNotFoundError(blob_id)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    scratch = tmp_dir / f"{blob_id}-rewrap.{os.getpid()}.tmp"  # <id>.<pid>.tmp: kept while we live
    try:
        scratch.write_bytes(data)
        outcome = rewrap_file(keys, str(scratch), blob_id, fsync=False)
        if outcome == "rewrapped":
            pack.replace_sync(blob_id, scratch.read_bytes())
        return outcome
    finally:
        scratch.unlink(missing_ok=True)


def key_rotate(settings: Settings, names: list[str] | None, as_json: bool) -> int:
    if settings.backend_type != "local":
        print("rs3gw: key-rotate re-wraps files of the local backend only", file=sys.stderr)
        return 2
    data = settings.data_dir
    keys = LocalKeyProvider(data)
    state = data / STATE_FILE
    try:
        if state.exists():
            targets: dict[str, Any] = json.loads(state.read_text())
            resumed = True
        else:
            rotated = keys.rotate(names)
            targets = {"started": time.time(), "keys": [k.ref for k in rotated]}
            tmp = state.with_suffix(".tmp")
            tmp.write_text(json.dumps(targets))
            os.replace(tmp, state)
            resumed = False
    except KeyError_ as e:
        print(f"rs3gw: {e}", file=sys.stderr)
        return 2
    files = _blob_files(data)
    pack = SmallPack(data / "smallblobs.db", settings.fsync) if (data / "smallblobs.db").exists() else None
    files += [("", blob_id) for blob_id in (pack.ids() if pack is not None else [])]
    counts: Counter[str] = Counter()
    failed: list[str] = []
    tty = sys.stderr.isatty()
    last = 0.0
    for n, (path, blob_id) in enumerate(files, 1):
        try:
            if path:
                counts[rewrap_file(keys, path, blob_id, settings.fsync)] += 1
            else:
                assert pack is not None
                counts[_rewrap_packed(keys, pack, data / "tmp", blob_id, settings.fsync)] += 1
        except FileNotFoundError:
            counts["gone"] += 1  # deleted meanwhile
        except (S3Error, KeyError_, OSError):
            failed.append(blob_id)
        now = time.monotonic()
        if now - last >= 1.0 or n == len(files):
            last = now
            line = f"key-rotate: {n}/{len(files)} blobs, {counts['rewrapped']} re-wrapped"
            print(("\r" + line) if tty else line, end="" if tty and n < len(files) else "\n", file=sys.stderr)
    if not failed:
        state.unlink(missing_ok=True)
    summary = {
        "keys": targets["keys"],
        "resumed": resumed,
        "blobs": len(files),
        "rewrapped": counts["rewrapped"],
        "already_current": counts["current"],
        "customer_keyed": counts["customer"],
        "plain": counts["plain"],
        "failed": failed,
        "complete": not failed,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"rotated {', '.join(summary['keys']) or 'nothing'}: {summary['rewrapped']} data keys re-wrapped, "  # type: ignore[arg-type]
            f"{summary['already_current']} already current, {summary['customer_keyed']} SSE-C (not "
            f"server-wrapped), {summary['plain']} plain, {len(failed)} failed"
        )
    return 0 if not failed else 1

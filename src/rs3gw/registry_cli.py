"""``rs3gw registry dataset|model ...``: the dataset and model registries, offline.

Works on the metadata store directly (the data dir's SQLite, or the configured PostgreSQL) with
the same engine code as the admin API, so the checks are the same: prefixes must hold objects,
versions are immutable, stage moves follow the rules. Only the store is opened (no crash
recovery, no orphan sweep), so running it beside a live server on PostgreSQL is safe; with SQLite,
the server's per-process caches do not see bucket changes made here, but registry reads always
go to the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rs3gw.config import Settings
from rs3gw.engine.registry import SPLITS, STAGES, Registry

Resolve = Callable[[argparse.Namespace], Settings]
Action = Callable[[Registry, argparse.Namespace], Awaitable[Any]]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    r = sub.add_parser("registry", help="dataset and model registries, offline (as the admin API)")
    rsub = r.add_subparsers(dest="registry_kind", metavar="KIND", required=True)

    def cmd(group: Any, name: str, help_: str, action: Action) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help_)
        add_common(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=lambda a: _run(a, resolve, action))
        return p

    d = rsub.add_parser("dataset", help="datasets and their immutable versions")
    dsub = d.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    p = cmd(dsub, "register", "register a dataset", lambda g, a: g.register_dataset(a.name, a.description))
    p.add_argument("name")
    p.add_argument("--description", default="")
    p = cmd(dsub, "version", "create a version over an s3:// prefix that holds objects", _dataset_version)
    p.add_argument("name")
    p.add_argument("--uri", required=True, help="s3://bucket/prefix/")
    p.add_argument("--parent", type=int, help="parent version (lineage)")
    p.add_argument("--description", default="")
    p.add_argument("--transformation", default="", help="how it was derived from the parent")
    p.add_argument("--split", action="append", default=[], metavar="SPLIT=URI", help=f"one of {SPLITS}")
    p = cmd(
        dsub,
        "split",
        "add a split to a version (once)",
        lambda g, a: g.add_split(a.name, a.version, a.split, a.uri),
    )
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("split", choices=SPLITS)
    p.add_argument("uri")
    p = cmd(dsub, "show", "a dataset, or one version", _dataset_show)
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p = cmd(dsub, "list", "list datasets (name prefix: --prefix)", lambda g, a: g.list_datasets(a.prefix))
    p.add_argument("--prefix", default="")
    p = cmd(dsub, "lineage", "a version's ancestors and the models using it", _dataset_lineage)
    p.add_argument("name")
    p.add_argument("version", type=int)

    m = rsub.add_parser("model", help="models, versions and stages")
    msub = m.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    p = cmd(msub, "register", "register a model", _model_register)
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.add_argument("--allow-multiple-production", action="store_true")
    p = cmd(msub, "version", "create a version (Development) of an s3:// object or prefix", _model_version)
    p.add_argument("name")
    p.add_argument("--uri", required=True)
    p.add_argument("--version", dest="semver", help="semantic version (default: next major)")
    p.add_argument("--description", default="")
    p.add_argument("--dataset", action="append", default=[], metavar="NAME:VERSION", help="trained on")
    p.add_argument("--parent", help="parent model version")
    p = cmd(msub, "stage", "move a version to another stage", _model_stage)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--archive-existing", action="store_true", help="archive the current Production version")
    p = cmd(msub, "show", "a model, or one version", _model_show)
    p.add_argument("name")
    p.add_argument("--version")
    p = cmd(msub, "list", "list models (name prefix: --prefix)", lambda g, a: g.list_models(a.prefix))
    p.add_argument("--prefix", default="")
    p = cmd(msub, "latest", "the highest version, optionally in one stage", _model_latest)
    p.add_argument("name")
    p.add_argument("--stage", choices=STAGES)
    p = cmd(
        msub,
        "lineage",
        "a version's ancestors and dataset versions",
        lambda g, a: g.model_lineage(a.name, a.version),
    )
    p.add_argument("name")
    p.add_argument("version")


async def _dataset_version(g: Registry, a: argparse.Namespace) -> Any:
    splits: dict[str, str] = {}
    for s in a.split:
        name, sep, uri = s.partition("=")
        if not sep:
            raise SystemExit(f"rs3gw: --split wants SPLIT=URI, got {s!r}")
        splits[name] = uri
    return await g.create_dataset_version(a.name, a.uri, a.parent, a.description, a.transformation, splits)


async def _dataset_show(g: Registry, a: argparse.Namespace) -> Any:
    return await (g.get_dataset(a.name) if a.version is None else g.get_dataset_version(a.name, a.version))


async def _dataset_lineage(g: Registry, a: argparse.Namespace) -> Any:
    return {
        "dataset": a.name,
        "lineage": await g.dataset_lineage(a.name, a.version),
        "models": await g.dataset_models(a.name, a.version),
    }


async def _model_register(g: Registry, a: argparse.Namespace) -> Any:
    return await g.register_model(a.name, a.description, a.allow_multiple_production)


async def _model_version(g: Registry, a: argparse.Namespace) -> Any:
    links: list[tuple[str, int]] = []
    for d in a.dataset:
        name, sep, ver = d.rpartition(":")
        if not sep or not ver.isdigit():
            raise SystemExit(f"rs3gw: --dataset wants NAME:VERSION, got {d!r}")
        links.append((name, int(ver)))
    return await g.create_model_version(a.name, a.uri, a.description, a.semver, links, a.parent)


async def _model_stage(g: Registry, a: argparse.Namespace) -> Any:
    return await g.transition_model_stage(a.name, a.version, a.stage, a.archive_existing)


async def _model_show(g: Registry, a: argparse.Namespace) -> Any:
    return await (g.get_model(a.name) if a.version is None else g.get_model_version(a.name, a.version))


async def _model_latest(g: Registry, a: argparse.Namespace) -> Any:
    return await g.get_latest_version(a.name, a.stage)


async def _with_registry(settings: Settings, action: Action, args: argparse.Namespace) -> Any:
    from rs3gw.wiring import build_engine

    engine = build_engine(settings)
    await engine.store.open()
    try:
        return await action(Registry(engine), args)
    finally:
        await engine.store.close()


def _text(result: Any) -> str:
    """One line per entry: enough to read at a terminal; --json has everything."""
    if result is None:
        return "(none)"
    items = result if isinstance(result, list) else [result]
    lines = []
    for item in items:
        if isinstance(item, dict):
            fields = [f"{k}={v}" for k, v in item.items() if not isinstance(v, (dict, list))]
            if isinstance(item.get("versions"), list):
                fields.append("versions=" + ",".join(str(v.get("version")) for v in item["versions"]))
            lines.append(" ".join(fields))
        else:
            lines.append(str(item))
    return "\n".join(lines)


def _run(args: argparse.Namespace, resolve: Resolve, action: Action) -> int:
    from rs3gw.errors import S3Error

    settings = resolve(args)
    if settings.metadata == "sqlite" and not (settings.data_dir / "meta.db").exists():
        print(f"rs3gw: no metadata in {settings.data_dir}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_with_registry(settings, action, args))
    except S3Error as exc:
        print(f"rs3gw: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else _text(result))
    return 0

"""Admin API of the dataset and model registries (JSON in, JSON out; primary account only).

    GET  registry/datasets[?prefix=]                         datasets
    PUT  registry/datasets/NAME            {description}     register (201)
    GET  registry/datasets/NAME                              one dataset with its versions
    POST registry/datasets/NAME/versions   {uri, parent_version, description, transformation, splits}
    GET  registry/datasets/NAME/versions/N
    PUT  registry/datasets/NAME/versions/N/splits/SPLIT  {uri}   add a split once
    GET  registry/datasets/NAME/versions/N/lineage          ancestors and the models using it
    GET  registry/models[?prefix=]
    PUT  registry/models/NAME              {description, allow_multiple_production}
    GET  registry/models/NAME
    POST registry/models/NAME/versions     {uri, version, description, datasets, parent_version}
    GET  registry/models/NAME/versions/V
    PUT  registry/models/NAME/versions/V/stage  {stage, archive_existing}
    GET  registry/models/NAME/versions/V/lineage
    GET  registry/models/NAME/latest[?stage=Production]

Errors are S3 XML like every other: NoSuchRegistryEntry (404), RegistryConflict (409, exists /
one-Production rule / concurrent change), InvalidRequest (400, a refused stage move),
InvalidArgument (400, bad names, versions, URIs, or a prefix without objects).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from rs3gw import errors
from rs3gw.engine.registry import Registry
from rs3gw.protocol.admin import AdminRoute
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response

MAX_BODY = 256 * 1024
NAME = r"(?P<name>[^/]+)"
VERSION = r"(?P<version>[^/]+)"


def _json(status: int, doc: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(doc).encode())


async def _body(ctx: Ctx) -> dict[str, Any]:
    data = bytearray()
    async for chunk in ctx.body():
        data += chunk
        if len(data) > MAX_BODY:
            raise errors.InvalidArgument("registry request body is too large")
    want = ctx.body_checks().sha256
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        got = hashlib.sha256(data).hexdigest()
        raise errors.XAmzContentSHA256Mismatch(ClientComputedContentSHA256=want, S3ComputedContentSHA256=got)
    if not data.strip():
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidArgument("registry request body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise errors.InvalidArgument("registry request body must be a JSON object")
    return doc


def _str(doc: dict[str, Any], key: str, default: str = "") -> str:
    v = doc.get(key, default)
    if not isinstance(v, str):
        raise errors.InvalidArgument(f"{key} must be a string", ArgumentName=key)
    return v


def _int(value: object, what: str) -> int:
    try:
        n = int(str(value))
    except ValueError:
        raise errors.InvalidArgument(f"{what} must be an integer", ArgumentName=what) from None
    return n


def _opt_int(doc: dict[str, Any], key: str) -> int | None:
    return None if doc.get(key) is None else _int(doc[key], key)


def _reg(ctx: Ctx) -> Registry:
    return Registry(ctx.engine)


async def list_datasets(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, {"datasets": await _reg(ctx).list_datasets(ctx.req.query.get("prefix", ""))})


async def register_dataset(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    return _json(201, await _reg(ctx).register_dataset(m["name"], _str(doc, "description")))


async def get_dataset(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, await _reg(ctx).get_dataset(m["name"]))


async def create_dataset_version(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    splits = doc.get("splits") or {}
    if not isinstance(splits, dict) or not all(isinstance(v, str) for v in splits.values()):
        raise errors.InvalidArgument("splits must map split names to s3:// URIs", ArgumentName="splits")
    version = await _reg(ctx).create_dataset_version(
        m["name"],
        _str(doc, "uri"),
        _opt_int(doc, "parent_version"),
        _str(doc, "description"),
        _str(doc, "transformation"),
        {str(k): v for k, v in splits.items()},
    )
    return _json(201, version)


async def get_dataset_version(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, await _reg(ctx).get_dataset_version(m["name"], _int(m["version"], "version")))


async def add_split(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    v = await _reg(ctx).add_split(m["name"], _int(m["version"], "version"), m["split"], _str(doc, "uri"))
    return _json(200, v)


async def dataset_lineage(ctx: Ctx, m: re.Match[str]) -> Response:
    reg, version = _reg(ctx), _int(m["version"], "version")
    return _json(
        200,
        {
            "dataset": m["name"],
            "lineage": await reg.dataset_lineage(m["name"], version),
            "models": await reg.dataset_models(m["name"], version),
        },
    )


async def list_models(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, {"models": await _reg(ctx).list_models(ctx.req.query.get("prefix", ""))})


async def register_model(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    multi = doc.get("allow_multiple_production", False)
    if not isinstance(multi, bool):
        raise errors.InvalidArgument("allow_multiple_production must be true or false")
    return _json(201, await _reg(ctx).register_model(m["name"], _str(doc, "description"), multi))


async def get_model(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, await _reg(ctx).get_model(m["name"]))


async def create_model_version(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    links = doc.get("datasets") or []
    if not isinstance(links, list) or not all(isinstance(d, dict) for d in links):
        raise errors.InvalidArgument("datasets must be a list of {dataset, version}", ArgumentName="datasets")
    datasets = [(_str(d, "dataset"), _int(d.get("version"), "version")) for d in links]
    version = doc.get("version")
    parent = doc.get("parent_version")
    mv = await _reg(ctx).create_model_version(
        m["name"],
        _str(doc, "uri"),
        _str(doc, "description"),
        None if version is None else _str(doc, "version"),
        datasets,
        None if parent is None else _str(doc, "parent_version"),
    )
    return _json(201, mv)


async def get_model_version(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, await _reg(ctx).get_model_version(m["name"], m["version"]))


async def transition_stage(ctx: Ctx, m: re.Match[str]) -> Response:
    doc = await _body(ctx)
    archive = doc.get("archive_existing", False)
    if not isinstance(archive, bool):
        raise errors.InvalidArgument("archive_existing must be true or false")
    mv = await _reg(ctx).transition_model_stage(m["name"], m["version"], _str(doc, "stage"), archive)
    return _json(200, mv)


async def model_lineage(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, await _reg(ctx).model_lineage(m["name"], m["version"]))


async def latest_model_version(ctx: Ctx, m: re.Match[str]) -> Response:
    stage = ctx.req.query.get("stage") or None
    mv = await _reg(ctx).get_latest_version(m["name"], stage)
    if mv is None:
        raise errors.NoSuchRegistryEntry(
            f"model {m['name']!r} has no version{' in ' + stage if stage else ''}"
        )
    return _json(200, mv)


def _r(method: str, path: str, handler: Any) -> AdminRoute:
    return (method, re.compile("registry/" + path), handler)


def registry_routes() -> list[AdminRoute]:
    ds, md = f"datasets/{NAME}", f"models/{NAME}"
    return [
        _r("GET", "datasets", list_datasets),
        _r("PUT", ds, register_dataset),
        _r("GET", ds, get_dataset),
        _r("POST", f"{ds}/versions", create_dataset_version),
        _r("GET", f"{ds}/versions/{VERSION}", get_dataset_version),
        _r("PUT", f"{ds}/versions/{VERSION}/splits/(?P<split>[^/]+)", add_split),
        _r("GET", f"{ds}/versions/{VERSION}/lineage", dataset_lineage),
        _r("GET", "models", list_models),
        _r("PUT", md, register_model),
        _r("GET", md, get_model),
        _r("POST", f"{md}/versions", create_model_version),
        _r("GET", f"{md}/versions/{VERSION}", get_model_version),
        _r("PUT", f"{md}/versions/{VERSION}/stage", transition_stage),
        _r("GET", f"{md}/versions/{VERSION}/lineage", model_lineage),
        _r("GET", f"{md}/latest", latest_model_version),
    ]

"""Dataset and model registries: versioned, immutable pointers at data already in the gateway.

Each dataset and each model is one JSON document in the metadata store's ``registry`` table
(``kind`` "dataset" or "model"), changed by read-modify-write under the store's revision check,
so concurrent writers (other requests, other gateways on PostgreSQL) never lose an update.

Documents (JSON, returned as-is by the admin API and the CLI):

* dataset: ``{name, description, created, versions: [{version (1, 2, ...), uri, created,
  description, object_count, size, parent_version, transformation, splits: {train|test|validation:
  {uri, object_count, size}}}]}``. A version's uri, counts, lineage and splits never change once
  set; a split can be added once (as the seed's ``add_split``), never replaced.
* model: ``{name, description, created, allow_multiple_production, versions: [{version (semver),
  uri, created, description, stage, stage_history: [{stage, at}], datasets: [{dataset, version}],
  parent_version}]}``.

Stages move Development → Staging → Production → Archived (one step back is allowed from Staging
and Production, and anything but Archived may be archived); at most one version is in Production
unless the model was registered with ``allow_multiple_production`` or the transition asks to
archive the current one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rs3gw import errors
from rs3gw.meta.store import ListQuery

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

Doc = dict[str, Any]
DATASET, MODEL = "dataset", "model"
SPLITS = ("train", "test", "validation")
STAGES = ("Development", "Staging", "Production", "Archived")
TRANSITIONS = {
    "Development": {"Staging", "Archived"},
    "Staging": {"Development", "Production", "Archived"},
    "Production": {"Staging", "Archived"},
    "Archived": set(),
}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SEMVER_RE = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
RETRIES = 8


def semver_key(v: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key of semver precedence: a pre-release sorts before its release."""
    m = SEMVER_RE.fullmatch(v)
    if m is None:
        raise errors.InvalidArgument(f"not a semantic version: {v!r}", ArgumentName="version")
    pre = m[4]
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return int(m[1]), int(m[2]), int(m[3]), 0 if pre else 1, ids  # type: ignore[return-value]


def parse_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise errors.InvalidArgument(f"expected an s3://bucket/prefix URI, got {uri!r}", ArgumentName="uri")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise errors.InvalidArgument(f"no bucket in {uri!r}", ArgumentName="uri")
    return bucket, prefix


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise errors.InvalidArgument(f"invalid {what} name {name!r}", ArgumentName="name")
    return name


class Registry:
    """Both registries over an engine (for the store and for checking that data exists)."""

    def __init__(self, engine: ObjectEngine) -> None:
        self.engine = engine

    # -- storage ---------------------------------------------------------------------------------
    async def _get(self, kind: str, name: str) -> tuple[Doc, int]:
        found = await self.engine.store.registry_get(kind, name)
        if found is None:
            raise errors.NoSuchRegistryEntry(f"no {kind} named {name!r}")
        doc: Doc = json.loads(found[0])
        return doc, found[1]

    async def _create(self, kind: str, name: str, doc: Doc) -> Doc:
        try:
            await self.engine.store.registry_put(kind, name, json.dumps(doc), 0)
        except errors.RegistryConflict:
            raise errors.RegistryConflict(f"{kind} {name!r} already exists") from None
        return doc

    async def _update(self, kind: str, name: str, change: Callable[[Doc], Any]) -> Any:
        """Apply ``change`` to the current document and write it back, retrying on a race.

        ``change`` may run more than once; it must raise for a refused change."""
        for _ in range(RETRIES):
            doc, rev = await self._get(kind, name)
            result = change(doc)
            try:
                await self.engine.store.registry_put(kind, name, json.dumps(doc), rev)
                return result
            except errors.RegistryConflict:
                continue
        raise errors.RegistryConflict(f"{kind} {name!r} is changing too often; retry")

    async def count_prefix(self, uri: str) -> tuple[int, int]:
        """(objects, bytes) under an s3:// prefix (or one key); NoSuchBucket / InvalidArgument if none."""
        bucket, prefix = parse_uri(uri)
        count = size = 0
        after = ""
        while True:
            page = await self.engine.list_objects(bucket, ListQuery(prefix, "", after, 1000))
            count += len(page.objects)
            size += sum(o.size for o in page.objects)
            if not page.is_truncated or not page.objects:
                break
            after = page.objects[-1].key
        if count == 0:
            raise errors.InvalidArgument(f"{uri} holds no objects", ArgumentName="uri", ArgumentValue=uri)
        return count, size

    # -- datasets --------------------------------------------------------------------------------
    async def register_dataset(self, name: str, description: str = "") -> Doc:
        doc = {
            "name": _name(name, DATASET),
            "description": description,
            "created": time.time(),
            "versions": [],
        }
        return await self._create(DATASET, name, doc)

    async def get_dataset(self, name: str) -> Doc:
        return (await self._get(DATASET, name))[0]

    async def list_datasets(self, prefix: str = "") -> list[Doc]:
        return [json.loads(d) for _, d, _ in await self.engine.store.registry_list(DATASET, prefix)]

    async def create_dataset_version(
        self,
        name: str,
        uri: str,
        parent_version: int | None = None,
        description: str = "",
        transformation: str = "",
        splits: dict[str, str] | None = None,
    ) -> Doc:
        """A new immutable version; its prefix (and each split's) must hold objects right now."""
        count, size = await self.count_prefix(uri)
        counted = {s: await self._split(s, u) for s, u in (splits or {}).items()}

        def change(doc: Doc) -> Doc:
            versions: list[Doc] = doc["versions"]
            if parent_version is not None and not any(v["version"] == parent_version for v in versions):
                raise errors.NoSuchRegistryEntry(f"dataset {name!r} has no version {parent_version}")
            version = {
                "version": max((v["version"] for v in versions), default=0) + 1,
                "uri": uri,
                "created": time.time(),
                "description": description,
                "object_count": count,
                "size": size,
                "parent_version": parent_version,
                "transformation": transformation,
                "splits": dict(counted),
            }
            versions.append(version)
            return version

        result: Doc = await self._update(DATASET, name, change)
        return result

    async def _split(self, split: str, uri: str) -> Doc:
        if split not in SPLITS:
            raise errors.InvalidArgument(f"split must be one of {', '.join(SPLITS)}", ArgumentName="split")
        count, size = await self.count_prefix(uri)
        return {"uri": uri, "object_count": count, "size": size}

    async def add_split(self, name: str, version: int, split: str, uri: str) -> Doc:
        """Record a split of an existing version, once: splits are part of the immutable version."""
        counted = await self._split(split, uri)

        def change(doc: Doc) -> Doc:
            v = _dataset_version(doc, version)
            if split in v["splits"]:
                raise errors.RegistryConflict(
                    f"dataset {name!r} version {version} already has a {split} split"
                )
            v["splits"][split] = counted
            return v

        result: Doc = await self._update(DATASET, name, change)
        return result

    async def get_dataset_version(self, name: str, version: int) -> Doc:
        return _dataset_version(await self.get_dataset(name), version)

    async def dataset_lineage(self, name: str, version: int) -> list[Doc]:
        """The version and its ancestors, newest first (each with its transformation note)."""
        doc = await self.get_dataset(name)
        chain: list[Doc] = []
        cur: int | None = version
        while cur is not None and len(chain) <= len(doc["versions"]):
            v = _dataset_version(doc, cur)
            chain.append(v)
            cur = v["parent_version"]
        return chain

    async def dataset_models(self, name: str, version: int | None = None) -> list[Doc]:
        """Model versions that name this dataset (any version, or one) in their lineage."""
        out: list[Doc] = []
        for model in await self.list_models():
            for mv in model["versions"]:
                for link in mv["datasets"]:
                    if link["dataset"] == name and version in (None, link["version"]):
                        out.append({"model": model["name"], "version": mv["version"], "stage": mv["stage"]})
        return out

    # -- models ----------------------------------------------------------------------------------
    async def register_model(
        self, name: str, description: str = "", allow_multiple_production: bool = False
    ) -> Doc:
        doc = {
            "name": _name(name, MODEL),
            "description": description,
            "created": time.time(),
            "allow_multiple_production": bool(allow_multiple_production),
            "versions": [],
        }
        return await self._create(MODEL, name, doc)

    async def get_model(self, name: str) -> Doc:
        return (await self._get(MODEL, name))[0]

    async def list_models(self, prefix: str = "") -> list[Doc]:
        return [json.loads(d) for _, d, _ in await self.engine.store.registry_list(MODEL, prefix)]

    async def create_model_version(
        self,
        name: str,
        uri: str,
        description: str = "",
        version: str | None = None,
        datasets: list[tuple[str, int]] | None = None,
        parent_version: str | None = None,
    ) -> Doc:
        """A new version in Development; its object(s) and the datasets it names must exist."""
        if version is not None:
            semver_key(version)
        await self.count_prefix(uri)
        links: list[Doc] = []
        for d, v in datasets or []:
            await self.get_dataset_version(d, int(v))
            links.append({"dataset": d, "version": int(v)})

        def change(doc: Doc) -> Doc:
            versions: list[Doc] = doc["versions"]
            taken = {v["version"] for v in versions}
            chosen = version or _next_version(taken)
            if chosen in taken:
                raise errors.RegistryConflict(f"model {name!r} already has version {chosen}")
            if parent_version is not None and parent_version not in taken:
                raise errors.NoSuchRegistryEntry(f"model {name!r} has no version {parent_version}")
            now = time.time()
            mv = {
                "version": chosen,
                "uri": uri,
                "created": now,
                "description": description,
                "stage": "Development",
                "stage_history": [{"stage": "Development", "at": now}],
                "datasets": links,
                "parent_version": parent_version,
            }
            versions.append(mv)
            return mv

        result: Doc = await self._update(MODEL, name, change)
        return result

    async def transition_model_stage(
        self, name: str, version: str, stage: str, archive_existing: bool = False
    ) -> Doc:
        if stage not in STAGES:
            raise errors.InvalidArgument(f"stage must be one of {', '.join(STAGES)}", ArgumentName="stage")

        def change(doc: Doc) -> Doc:
            mv = _model_version(doc, version)
            if stage == mv["stage"]:
                return mv
            if stage not in TRANSITIONS[mv["stage"]]:
                raise errors.InvalidRequest(f"a {mv['stage']} model version cannot move to {stage}")
            now = time.time()
            if stage == "Production" and not doc["allow_multiple_production"]:
                current = [v for v in doc["versions"] if v["stage"] == "Production"]
                if current and not archive_existing:
                    raise errors.RegistryConflict(
                        f"model {name!r} version {current[0]['version']} is already in Production "
                        "(archive it first, or pass archive_existing)"
                    )
                for v in current:
                    v["stage"] = "Archived"
                    v["stage_history"].append({"stage": "Archived", "at": now})
            mv["stage"] = stage
            mv["stage_history"].append({"stage": stage, "at": now})
            return mv

        result: Doc = await self._update(MODEL, name, change)
        return result

    async def get_model_version(self, name: str, version: str) -> Doc:
        return _model_version(await self.get_model(name), version)

    async def get_latest_version(self, name: str, stage: str | None = None) -> Doc | None:
        """The highest semantic version (in ``stage``, if given), or None."""
        if stage is not None and stage not in STAGES:
            raise errors.InvalidArgument(f"stage must be one of {', '.join(STAGES)}", ArgumentName="stage")
        versions = [v for v in (await self.get_model(name))["versions"] if stage in (None, v["stage"])]
        return max(versions, key=lambda v: semver_key(v["version"]), default=None)

    async def model_lineage(self, name: str, version: str) -> Doc:
        """The version's ancestry (parent versions, newest first) and the dataset versions it used."""
        doc = await self.get_model(name)
        chain: list[Doc] = []
        cur: str | None = version
        while cur is not None and len(chain) <= len(doc["versions"]):
            mv = _model_version(doc, cur)
            chain.append(mv)
            cur = mv["parent_version"]
        datasets = [
            {**link, "lineage": await self.dataset_lineage(link["dataset"], link["version"])}
            for link in chain[0]["datasets"]
        ]
        return {"model": name, "versions": chain, "datasets": datasets}


def _next_version(taken: set[str]) -> str:
    major = max((semver_key(v)[0] for v in taken), default=0) + 1
    return f"{major}.0.0"


def _dataset_version(doc: Doc, version: int) -> Doc:
    for v in doc["versions"]:
        if v["version"] == version:
            result: Doc = v
            return result
    raise errors.NoSuchRegistryEntry(f"dataset {doc['name']!r} has no version {version}")


def _model_version(doc: Doc, version: str) -> Doc:
    for v in doc["versions"]:
        if v["version"] == version:
            result: Doc = v
            return result
    raise errors.NoSuchRegistryEntry(f"model {doc['name']!r} has no version {version}")

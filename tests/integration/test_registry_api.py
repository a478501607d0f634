"""Dataset and model registries: admin API, `rs3gw registry ...` and the Python API, over data
uploaded to a real server with boto3."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, cleanup_bucket
from pg_cluster import metadata_args

PRIMARY = (ACCESS_KEY, SECRET_KEY)
SPLITS = {"train": 3, "test": 2, "validation": 1}


def admin(
    srv: Server, method: str, path: str, doc: object = None, creds: tuple[str, str] = PRIMARY
) -> tuple[int, Any]:
    url = f"{srv.endpoint}/_rs3gw/admin/registry/{path}"
    body = doc if isinstance(doc, bytes) else b"" if doc is None else json.dumps(doc).encode()
    req = AWSRequest(
        method=method, url=url, data=body, headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    )
    SigV4Auth(Credentials(*creds), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=10) as resp:
            data, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        data, status = e.read(), e.code
    if data.startswith(b"{"):
        return status, json.loads(data)
    return status, data.decode()


def code_of(body: Any) -> str:
    assert isinstance(body, str), body
    return body.split("<Code>", 1)[1].split("</Code>", 1)[0]


@pytest.fixture(scope="module")
def data(server: Server) -> Iterator[str]:
    """A bucket holding a dataset (three splits) and a model file."""
    s3 = server.client()
    name = f"reg-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    for split, n in SPLITS.items():
        for i in range(n):
            s3.put_object(Bucket=name, Key=f"ds/v1/{split}/{i}.bin", Body=b"x" * (10 + i))
    s3.put_object(Bucket=name, Key="models/net-1.pt", Body=b"weights")
    s3.put_object(Bucket=name, Key="models/net-2.pt", Body=b"weights2")
    yield name
    cleanup_bucket(s3, name)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_dataset_version(server: Server, data: str) -> tuple[str, dict[str, Any]]:
    name = uid("imagenet")
    assert admin(server, "PUT", f"datasets/{name}", {"description": "ImageNet"})[0] == 201
    splits = {s: f"s3://{data}/ds/v1/{s}/" for s in ("train", "test")}
    status, v = admin(
        server, "POST", f"datasets/{name}/versions", {"uri": f"s3://{data}/ds/v1/", "splits": splits}
    )
    assert status == 201, v
    return name, v


def test_dataset_version_counts_splits_and_immutability(server: Server, data: str) -> None:
    name, v = new_dataset_version(server, data)
    assert v["version"] == 1 and v["object_count"] == 6
    assert v["size"] == sum(10 + i for n in SPLITS.values() for i in range(n))
    assert {s: x["object_count"] for s, x in v["splits"].items()} == {"train": 3, "test": 2}
    status, body = admin(server, "PUT", f"datasets/{name}", {})
    assert status == 409 and code_of(body) == "RegistryConflict"
    # A split is added once; replacing it is refused.
    status, v1 = admin(
        server,
        "PUT",
        f"datasets/{name}/versions/1/splits/validation",
        {"uri": f"s3://{data}/ds/v1/validation/"},
    )
    assert status == 200 and v1["splits"]["validation"]["object_count"] == 1
    status, body = admin(
        server, "PUT", f"datasets/{name}/versions/1/splits/train", {"uri": f"s3://{data}/ds/v1/"}
    )
    assert status == 409 and code_of(body) == "RegistryConflict"
    status, body = admin(
        server, "PUT", f"datasets/{name}/versions/1/splits/holdout", {"uri": f"s3://{data}/ds/v1/"}
    )
    assert status == 400 and code_of(body) == "InvalidArgument"
    # More data under the prefix later does not change the registered version.
    server.client().put_object(Bucket=data, Key="ds/v1/train/late.bin", Body=b"late")
    try:
        status, again = admin(server, "GET", f"datasets/{name}/versions/1")
        assert status == 200 and again["object_count"] == 6 and again["splits"]["train"]["object_count"] == 3
    finally:
        server.client().delete_object(Bucket=data, Key="ds/v1/train/late.bin")
    # No route rewrites a version.
    status, body = admin(server, "PUT", f"datasets/{name}/versions/1", {"uri": f"s3://{data}/models/"})
    assert status == 405 and code_of(body) == "MethodNotAllowed"


def test_dataset_version_needs_existing_prefix(server: Server, data: str) -> None:
    name = uid("ds")
    admin(server, "PUT", f"datasets/{name}")
    status, body = admin(server, "POST", f"datasets/{name}/versions", {"uri": f"s3://{data}/nothing-here/"})
    assert status == 400 and code_of(body) == "InvalidArgument"
    status, body = admin(server, "POST", f"datasets/{name}/versions", {"uri": "s3://no-such-bucket-zz9/x/"})
    assert status == 404 and code_of(body) == "NoSuchBucket"
    status, body = admin(server, "POST", f"datasets/{name}/versions", {"uri": "http://elsewhere/x"})
    assert status == 400 and code_of(body) == "InvalidArgument"
    status, body = admin(
        server,
        "POST",
        f"datasets/{name}/versions",
        {"uri": f"s3://{data}/ds/", "splits": {"train": f"s3://{data}/none/"}},
    )
    assert status == 400 and code_of(body) == "InvalidArgument"
    assert admin(server, "GET", f"datasets/{name}")[1]["versions"] == []  # nothing half-registered
    status, body = admin(server, "POST", "datasets/missing-ds/versions", {"uri": f"s3://{data}/ds/"})
    assert status == 404 and code_of(body) == "NoSuchRegistryEntry"
    status, body = admin(server, "PUT", "datasets/-bad.name", {})
    assert status == 400 and code_of(body) == "InvalidArgument"
    status, body = admin(
        server, "POST", f"datasets/{name}/versions", {"uri": f"s3://{data}/ds/", "parent_version": 7}
    )
    assert status == 404 and code_of(body) == "NoSuchRegistryEntry"


def test_model_stages_and_one_production_rule(server: Server, data: str) -> None:
    ds, _ = new_dataset_version(server, data)
    model = uid("resnet")
    assert admin(server, "PUT", f"models/{model}", {"description": "ResNet-50"})[0] == 201
    link = [{"dataset": ds, "version": 1}]
    status, v1 = admin(
        server,
        "POST",
        f"models/{model}/versions",
        {"uri": f"s3://{data}/models/net-1.pt", "version": "1.0.0", "datasets": link},
    )
    assert status == 201 and v1["stage"] == "Development", v1
    status, auto = admin(server, "POST", f"models/{model}/versions", {"uri": f"s3://{data}/models/net-2.pt"})
    assert status == 201 and auto["version"] == "2.0.0"
    status, v11 = admin(
        server,
        "POST",
        f"models/{model}/versions",
        {"uri": f"s3://{data}/models/net-2.pt", "version": "1.1.0-rc.1", "parent_version": "1.0.0"},
    )
    assert status == 201
    for bad, code, want in (
        ({"uri": f"s3://{data}/models/net-1.pt", "version": "1.0"}, 400, "InvalidArgument"),
        ({"uri": f"s3://{data}/models/net-1.pt", "version": "1.0.0"}, 409, "RegistryConflict"),
        ({"uri": f"s3://{data}/models/none.pt", "version": "3.0.0"}, 400, "InvalidArgument"),
        (
            {
                "uri": f"s3://{data}/models/net-1.pt",
                "version": "3.0.0",
                "datasets": [{"dataset": ds, "version": 9}],
            },
            404,
            "NoSuchRegistryEntry",
        ),
    ):
        status, body = admin(server, "POST", f"models/{model}/versions", bad)
        assert (status, code_of(body)) == (code, want), bad

    def stage(version: str, to: str, **kw: Any) -> tuple[int, Any]:
        return admin(server, "PUT", f"models/{model}/versions/{version}/stage", {"stage": to, **kw})

    status, body = stage("1.0.0", "Production")  # no skipping Staging
    assert status == 400 and code_of(body) == "InvalidRequest"
    assert stage("1.0.0", "Staging")[1]["stage"] == "Staging"
    assert stage("1.0.0", "Production")[1]["stage"] == "Production"
    assert stage("2.0.0", "Staging")[0] == 200
    status, body = stage("2.0.0", "Production")
    assert status == 409 and code_of(body) == "RegistryConflict" and "1.0.0" in body
    status, v2 = stage("2.0.0", "Production", archive_existing=True)
    assert status == 200 and v2["stage"] == "Production"
    old = admin(server, "GET", f"models/{model}/versions/1.0.0")[1]
    assert old["stage"] == "Archived"
    assert [h["stage"] for h in old["stage_history"]] == ["Development", "Staging", "Production", "Archived"]
    status, body = stage("1.0.0", "Development")  # Archived is final
    assert status == 400 and code_of(body) == "InvalidRequest"
    status, body = stage("1.0.0", "Retired")
    assert status == 400 and code_of(body) == "InvalidArgument"
    assert admin(server, "GET", f"models/{model}/latest?stage=Production")[1]["version"] == "2.0.0"
    assert admin(server, "GET", f"models/{model}/latest")[1]["version"] == "2.0.0"
    assert admin(server, "GET", f"models/{model}/latest?stage=Development")[1]["version"] == "1.1.0-rc.1"
    status, body = admin(server, "GET", f"models/{model}/latest?stage=Staging")
    assert status == 404 and code_of(body) == "NoSuchRegistryEntry"
    # Lineage both ways.
    lin = admin(server, "GET", f"models/{model}/versions/1.1.0-rc.1/lineage")[1]
    assert [v["version"] for v in lin["versions"]] == ["1.1.0-rc.1", "1.0.0"] and lin["datasets"] == []
    lin = admin(server, "GET", f"models/{model}/versions/1.0.0/lineage")[1]
    assert lin["datasets"][0]["dataset"] == ds and lin["datasets"][0]["lineage"][0]["version"] == 1
    users = admin(server, "GET", f"datasets/{ds}/versions/1/lineage")[1]
    assert users["models"] == [{"model": model, "version": "1.0.0", "stage": "Archived"}]
    assert v11["parent_version"] == "1.0.0"


def test_multiple_production_when_allowed_and_dataset_lineage(server: Server, data: str) -> None:
    model = uid("ab-test")
    admin(server, "PUT", f"models/{model}", {"allow_multiple_production": True})
    for ver in ("1.0.0", "1.1.0"):
        admin(server, "POST", f"models/{model}/versions", {"uri": f"s3://{data}/models/", "version": ver})
        for to in ("Staging", "Production"):
            assert admin(server, "PUT", f"models/{model}/versions/{ver}/stage", {"stage": to})[0] == 200
    stages = [v["stage"] for v in admin(server, "GET", f"models/{model}")[1]["versions"]]
    assert stages == ["Production", "Production"]
    name, _ = new_dataset_version(server, data)
    status, v2 = admin(
        server,
        "POST",
        f"datasets/{name}/versions",
        {"uri": f"s3://{data}/ds/v1/train/", "parent_version": 1, "transformation": "train split only"},
    )
    assert status == 201 and v2["version"] == 2 and v2["object_count"] == 3
    lin = admin(server, "GET", f"datasets/{name}/versions/2/lineage")[1]["lineage"]
    assert [(v["version"], v["transformation"]) for v in lin] == [(2, "train split only"), (1, "")]
    listed = admin(server, "GET", f"datasets?prefix={name}")[1]["datasets"]
    assert [d["name"] for d in listed] == [name]


def test_registry_is_primary_only(server: Server) -> None:
    status, body = admin(server, "GET", "datasets", creds=(USER2[1], USER2[2]))
    assert status == 403 and code_of(body) == "AccessDenied"
    name = uid("json")
    admin(server, "PUT", f"datasets/{name}")
    for bad in (b"not json", b"[1, 2]", b'{"uri": 5}'):
        status, body = admin(server, "POST", f"datasets/{name}/versions", bad)
        assert status == 400 and code_of(body) == "InvalidArgument", bad


def run_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    meta = metadata_args(server.data_dir, ())
    if meta:
        env["RS3GW_METADATA"] = meta[1]
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", "registry", *args, "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def test_cli_shares_the_store_with_the_api(server: Server, data: str) -> None:
    name, model = uid("cli-ds"), uid("cli-model")
    assert run_cli(server, "dataset", "register", name, "--description", "from the CLI").returncode == 0
    out = run_cli(
        server,
        "dataset",
        "version",
        name,
        "--uri",
        f"s3://{data}/ds/v1/",
        "--split",
        f"train=s3://{data}/ds/v1/train/",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["splits"]["train"]["object_count"] == 3
    bad = run_cli(server, "dataset", "version", name, "--uri", f"s3://{data}/absent/")
    assert bad.returncode == 1 and "InvalidArgument" in bad.stderr
    # What the CLI wrote, the server's admin API reads.
    assert admin(server, "GET", f"datasets/{name}")[1]["versions"][0]["object_count"] == 6
    assert run_cli(server, "model", "register", model).returncode == 0
    out = run_cli(
        server,
        "model",
        "version",
        model,
        "--uri",
        f"s3://{data}/models/net-1.pt",
        "--version",
        "0.1.0",
        "--dataset",
        f"{name}:1",
    )
    assert out.returncode == 0, out.stderr
    for to in ("Staging", "Production"):
        assert run_cli(server, "model", "stage", model, "0.1.0", to).returncode == 0
    out = run_cli(server, "model", "latest", model, "--stage", "Production", "--json")
    assert json.loads(out.stdout)["version"] == "0.1.0"
    out = run_cli(server, "model", "stage", model, "0.1.0", "Development")
    assert out.returncode == 1 and "InvalidRequest" in out.stderr
    out = run_cli(server, "dataset", "lineage", name, "1", "--json")
    assert json.loads(out.stdout)["models"][0]["model"] == model
    assert "versions=1" in run_cli(server, "dataset", "show", name).stdout


def test_python_api_as_in_the_seed(tmp_path: Path) -> None:
    from rs3gw.storage import DatasetRegistry, DatasetSplit, ModelRegistry, ModelStage, StorageEngine

    async def run() -> None:
        storage = StorageEngine(tmp_path / "data", fsync=False)
        await storage.create_bucket("bucket")
        for i in range(4):
            await storage.put_object(
                "bucket", f"imagenet_v1/train/{i}", "application/octet-stream", {}, b"img"
            )
        await storage.put_object("bucket", "models/resnet50_v1.pt", "application/octet-stream", {}, b"w")
        registry = await DatasetRegistry.new(storage)
        await registry.register_dataset("imagenet", "ImageNet classification dataset")
        version = await registry.create_dataset_version("imagenet", "s3://bucket/imagenet_v1/", None)
        with pytest.raises(ValueError, match="holds 4 objects"):  # a wrong count records nothing
            await registry.add_split("imagenet", 1, DatasetSplit.TRAIN, "s3://bucket/imagenet_v1/train/", 99)
        v = await registry.add_split(
            "imagenet", version["version"], DatasetSplit.TRAIN, "s3://bucket/imagenet_v1/train/", 4
        )
        assert v["splits"]["train"]["object_count"] == 4
        models = await ModelRegistry.new(storage)
        await models.register_model("resnet50", "ResNet-50 image classifier")
        mv = await models.create_model_version(
            "resnet50",
            "s3://bucket/models/resnet50_v1.pt",
            "Initial production model",
            datasets=[("imagenet", 1)],
        )
        await models.transition_model_stage("resnet50", mv["version"], ModelStage.STAGING)
        await models.transition_model_stage("resnet50", mv["version"], ModelStage.PRODUCTION)
        latest = await models.get_latest_version("resnet50", ModelStage.PRODUCTION)
        assert latest is not None and latest["version"] == mv["version"] == "1.0.0"
        assert await registry.models_using("imagenet", 1) == [
            {"model": "resnet50", "version": "1.0.0", "stage": "Production"}
        ]
        await storage.close()

    asyncio.run(run())

"""The AWS CLI as users run it: `aws s3` and `aws s3api` subprocesses over HTTP and HTTPS."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket

AWS = str(Path(sys.executable).with_name("aws"))


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "aws-config"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",  # a failure must show at once, not after retries
    )
    return env


class Cli:
    def __init__(self, server: Server, env: dict[str, str]) -> None:
        self.server = server
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [AWS, "--endpoint-url", self.server.endpoint, *args]
        if self.server.ca_file:
            cmd[1:1] = ["--ca-bundle", self.server.ca_file]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


@pytest.fixture
def cli(server: Server, cli_env: dict[str, str]) -> Iterator[tuple[Cli, str]]:
    """Plain HTTP; each CLI start costs over a second, so HTTPS gets one combined test below."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    c = Cli(server, cli_env)
    c.run("s3", "mb", f"s3://{name}")
    yield c, name
    cleanup_bucket(server.client(), name)


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "dir/b.bin": os.urandom(3000),
        "dir/sub/c with space.txt": b"gamma",
        "dir/sub/\u00fcnicode.txt": "ü".encode(),
        "empty": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_cp_ls_rm(cli: tuple[Cli, str], tmp_path: Path) -> None:
    c, name = cli
    src = tmp_path / "one.txt"
    src.write_bytes(b"hello from the cli")
    c.run("s3", "cp", str(src), f"s3://{name}/x/one.txt")
    assert "one.txt" in c.run("s3", "ls", f"s3://{name}/x/").stdout
    dst = tmp_path / "back.txt"
    c.run("s3", "cp", f"s3://{name}/x/one.txt", str(dst))
    assert dst.read_bytes() == b"hello from the cli"
    c.run("s3", "rm", f"s3://{name}/x/one.txt")
    assert c.run("s3", "ls", f"s3://{name}/x/", check=False).stdout == ""
    assert name in c.run("s3", "ls").stdout


def test_sync_tree_both_ways(cli: tuple[Cli, str], tmp_path: Path) -> None:
    c, name = cli
    files = _tree(tmp_path / "up")
    c.run("s3", "sync", str(tmp_path / "up"), f"s3://{name}/tree")
    listing = c.run("s3", "ls", "--recursive", f"s3://{name}/tree/").stdout
    for rel in files:
        assert f"tree/{rel}" in listing
    second = c.run("s3", "sync", str(tmp_path / "up"), f"s3://{name}/tree").stdout
    assert "upload:" not in second  # nothing changed, nothing sent
    c.run("s3", "sync", f"s3://{name}/tree", str(tmp_path / "down"))
    for rel, data in files.items():
        assert (tmp_path / "down" / rel).read_bytes() == data
    c.run("s3", "rm", "--recursive", f"s3://{name}/tree")
    assert c.run("s3", "ls", "--recursive", f"s3://{name}/", check=False).stdout == ""


def test_multipart_cp(cli: tuple[Cli, str], tmp_path: Path) -> None:
    c, name = cli
    src = tmp_path / "big.bin"
    with src.open("wb") as f:
        for _ in range(20):
            f.write(os.urandom(1 << 20))
    c.run("s3", "cp", str(src), f"s3://{name}/big.bin")
    head = c.json("s3api", "head-object", "--bucket", name, "--key", "big.bin")
    assert head["ContentLength"] == 20 << 20
    assert head["ETag"].strip('"').endswith("-3")  # 8 MiB parts by default
    dst = tmp_path / "big.out"
    c.run("s3", "cp", f"s3://{name}/big.bin", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_s3api_put_get_list(cli: tuple[Cli, str], tmp_path: Path) -> None:
    c, name = cli
    src = tmp_path / "body"
    src.write_bytes(b"s3api body")
    put = c.json(
        "s3api", "put-object", "--bucket", name, "--key", "k/1", "--body", str(src),
        "--metadata", "color=blue", "--content-type", "text/plain",
    )  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(b"s3api body").hexdigest()}"'
    out = tmp_path / "out"
    got = c.json("s3api", "get-object", "--bucket", name, "--key", "k/1", str(out))
    assert out.read_bytes() == b"s3api body"
    assert got["Metadata"] == {"color": "blue"} and got["ContentType"] == "text/plain"
    listing = c.json("s3api", "list-objects-v2", "--bucket", name, "--prefix", "k/")
    assert [o["Key"] for o in listing["Contents"]] == ["k/1"]
    missing = c.run("s3api", "get-object", "--bucket", name, "--key", "nope", str(out), check=False)
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr


def test_wrong_secret_is_reported(server: Server, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AWS_SECRET_ACCESS_KEY": "definitely-wrong"}
    proc = Cli(server, env).run("s3api", "list-buckets", check=False)
    assert proc.returncode != 0 and "SignatureDoesNotMatch" in proc.stderr


def test_https_with_ca_bundle(tls_server: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    c = Cli(tls_server, cli_env)
    name = f"cli-{uuid.uuid4().hex[:12]}"
    c.run("s3", "mb", f"s3://{name}")
    try:
        src = tmp_path / "mid.bin"
        src.write_bytes(os.urandom(9 << 20))  # over the 8 MiB threshold: multipart over TLS
        c.run("s3", "cp", str(src), f"s3://{name}/mid.bin")
        files = _tree(tmp_path / "up")
        c.run("s3", "sync", str(tmp_path / "up"), f"s3://{name}/t")
        listing = c.json("s3api", "list-objects-v2", "--bucket", name)
        assert sorted(o["Key"] for o in listing["Contents"]) == sorted(
            ["mid.bin", *(f"t/{k}" for k in files)]
        )
        out = tmp_path / "mid.out"
        c.json("s3api", "get-object", "--bucket", name, "--key", "mid.bin", str(out))
        assert out.read_bytes() == src.read_bytes()
    finally:
        cleanup_bucket(tls_server.client(), name)


def test_https_rejects_unknown_ca(tls_server: Server, cli_env: dict[str, str]) -> None:
    """Without --ca-bundle the self-signed certificate must fail verification (TLS really is on)."""
    cmd = [AWS, "--endpoint-url", tls_server.endpoint, "s3", "ls"]
    proc = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and "SSL" in proc.stderr

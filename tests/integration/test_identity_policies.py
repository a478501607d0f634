"""Identity policies attached to store users, evaluated with the bucket policy (one real server)."""

from __future__ import annotations

import hashlib
import json
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
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server


def admin(srv: Server, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    url = f"{srv.endpoint}/_rs3gw/admin/{path}"
    sha = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body, headers={"x-amz-content-sha256": sha})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def policy(*statements: dict[str, Any]) -> bytes:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}).encode()


def new_user(srv: Server) -> tuple[str, Any]:
    name = "u" + uuid.uuid4().hex[:10]
    assert admin(srv, "PUT", f"users/{name}")[0] == 201
    status, data = admin(srv, "POST", f"users/{name}/keys")
    assert status == 201, data
    doc = json.loads(data)
    return name, srv.client(doc["access_key"], doc["secret_key"])


def denied(call: Any, **kw: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(**kw)
    assert info.value.response["Error"]["Code"] == "AccessDenied"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("idpol") / "data")
    yield server
    server.stop()


def test_deny_delete_on_own_bucket_then_delete_policy_restores(srv: Server) -> None:
    name, c = new_user(srv)
    b = name + "-own"
    c.create_bucket(Bucket=b)
    deny = policy({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{b}/*"})
    assert admin(srv, "PUT", f"users/{name}/policy", deny)[0] == 204
    status, got = admin(srv, "GET", f"users/{name}/policy")
    assert status == 200 and json.loads(got) == json.loads(deny)
    c.put_object(Bucket=b, Key="k", Body=b"x")
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"x"
    denied(c.delete_object, Bucket=b, Key="k")
    assert admin(srv, "DELETE", f"users/{name}/policy")[0] == 204
    assert admin(srv, "GET", f"users/{name}/policy")[0] == 404
    c.delete_object(Bucket=b, Key="k")
    c.delete_bucket(Bucket=b)


def test_prefix_allow_and_explicit_deny(srv: Server) -> None:
    name, c = new_user(srv)
    b = name + "-pfx"
    c.create_bucket(Bucket=b)
    doc = policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": f"arn:aws:s3:::{b}/open/*"},
        {
            "Effect": "Deny",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": f"arn:aws:s3:::{b}/secret/*",
        },
    )
    assert admin(srv, "PUT", f"users/{name}/policy", doc)[0] == 204
    c.put_object(Bucket=b, Key="open/a", Body=b"1")
    assert c.get_object(Bucket=b, Key="open/a")["Body"].read() == b"1"
    denied(c.put_object, Bucket=b, Key="secret/a", Body=b"2")
    denied(c.get_object, Bucket=b, Key="secret/a")
    # On its own bucket the identity policy only restricts: keys it does not mention stay the owner's.
    c.put_object(Bucket=b, Key="other", Body=b"3")


@pytest.mark.parametrize(
    "doc",
    [
        b"{not json",
        policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ),
        policy({"Effect": "Allow", "Action": "s3:GetObject"}),
        policy({"Effect": "Allow", "Action": "s3:Nope", "Resource": "arn:aws:s3:::b/*"}),
        policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"}),
    ],
)
def test_malformed_identity_policy(srv: Server, doc: bytes) -> None:
    name, _ = new_user(srv)
    status, body = admin(srv, "PUT", f"users/{name}/policy", doc)
    assert status == 400 and b"MalformedPolicy" in body, body
    assert admin(srv, "GET", f"users/{name}/policy")[0] == 404


def test_policy_for_unknown_user(srv: Server) -> None:
    doc = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*"})
    assert admin(srv, "PUT", "users/nobody-here/policy", doc)[0] == 404


def test_cross_account_needs_both_sides(srv: Server) -> None:
    a_name, a = new_user(srv)
    b_name, b = new_user(srv)
    bucket = a_name + "-shared"
    a.create_bucket(Bucket=bucket)
    a.put_object(Bucket=bucket, Key="k", Body=b"v")
    principal = hashlib.sha256(f"rs3gw-account:{b_name}".encode()).hexdigest()
    bucket_doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"CanonicalUser": principal},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    a.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_doc))
    assert b.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"  # no identity policy: bucket decides
    deny = policy({"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    assert admin(srv, "PUT", f"users/{b_name}/policy", deny)[0] == 204
    denied(b.get_object, Bucket=bucket, Key="k")
    # An identity policy that does not mention the bucket does not allow it either (cross-account).
    other = policy({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::elsewhere/*"})
    assert admin(srv, "PUT", f"users/{b_name}/policy", other)[0] == 204
    denied(b.get_object, Bucket=bucket, Key="k")
    allow = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    assert admin(srv, "PUT", f"users/{b_name}/policy", allow)[0] == 204
    assert b.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    # The identity policy alone never opens another account's bucket.
    denied(b.put_object, Bucket=bucket, Key="new", Body=b"x")


def test_configured_account_policy(srv: Server) -> None:
    c = srv.client(USER2[1], USER2[2])
    b = "idpol-cfg-" + uuid.uuid4().hex[:8]
    c.create_bucket(Bucket=b)
    deny = policy({"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{b}/*"})
    assert admin(srv, "PUT", f"users/{USER2[0]}/policy", deny)[0] == 204
    denied(c.put_object, Bucket=b, Key="k", Body=b"x")
    assert admin(srv, "DELETE", f"users/{USER2[0]}/policy")[0] == 204
    c.put_object(Bucket=b, Key="k", Body=b"x")


def test_cli_policy_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "rs3gw", "admin", "user", *args, "--data-dir", data]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)

    assert cli("create", "carol").returncode == 0
    doc = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::x/*"}).decode()
    (tmp_path / "p.json").write_text(doc)
    assert cli("policy", "put", "carol", "--file", str(tmp_path / "p.json")).returncode == 0
    got = cli("policy", "get", "carol", "--json")
    assert got.returncode == 0 and json.loads(got.stdout) == json.loads(doc)
    bad = doc.replace('"Effect"', '"Principal": "*", "Effect"')
    out = cli("policy", "put", "carol", stdin=bad)
    assert out.returncode == 1 and "MalformedPolicy" in out.stderr
    assert cli("policy", "delete", "carol").returncode == 0
    assert "NoSuchEntity" in cli("policy", "get", "carol").stderr

"""Shared by the access-control tests: run one call and name its result, and the 4-op matrix."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

ARN = "arn:aws:s3:::"


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return "ok"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def matrix(clients: dict[str, Any], bucket: str, get_key: str = "data/obj.txt") -> dict[str, dict[str, str]]:
    """For each actor: get an owner-written object, put a new one, list, delete an owner-written one."""
    owner = clients["owner"]
    out: dict[str, dict[str, str]] = {}
    for who, c in clients.items():
        victim = f"data/victim-{who}"
        outcome(lambda v=victim: owner.put_object(Bucket=bucket, Key=v, Body=b"v"))  # may be denied too
        out[who] = {
            "get": outcome(lambda c=c: c.get_object(Bucket=bucket, Key=get_key)["Body"].read()),
            "put": outcome(lambda c=c, w=who: c.put_object(Bucket=bucket, Key=f"data/new-{w}", Body=b"n")),
            "list": outcome(lambda c=c: c.list_objects_v2(Bucket=bucket)),
            "delete": outcome(lambda c=c, v=victim: c.delete_object(Bucket=bucket, Key=v)),
        }
    return out


OK4 = {"get": "ok", "put": "ok", "list": "ok", "delete": "ok"}
DENY4 = {"get": "AccessDenied", "put": "AccessDenied", "list": "AccessDenied", "delete": "AccessDenied"}
READ_ONLY = {"get": "ok", "put": "AccessDenied", "list": "ok", "delete": "AccessDenied"}

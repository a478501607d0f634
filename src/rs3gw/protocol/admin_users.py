"""Admin API routes for store-managed users and access keys (primary account only, like every
``/_rs3gw/admin/...`` route). Creating a key is the only answer that carries its secret.

    GET    users                      users, with their key counts
    PUT    users/NAME                 create a user (201)
    DELETE users/NAME                 delete a user and all of its keys
    POST   users/NAME/enable|disable  a disabled user's keys all stop authenticating
    PUT    users/NAME/policy          attach an identity policy (JSON body; 400 MalformedPolicy)
    GET    users/NAME/policy          the policy document (404 NoSuchEntity when none)
    DELETE users/NAME/policy          detach it
    GET    users/NAME/keys            that user's keys (never secrets)
    POST   users/NAME/keys            a new key pair (201; the secret is shown this once)
    GET    keys                       every store key
    GET    keys/AK                    one key
    DELETE keys/AK                    delete a key
    POST   keys/AK/enable|disable
    POST   keys/AK/rotate             a second key for the same user; the old one stays valid

Each change reloads this process's key map before answering, and bumps the data dir's IAM
generation (``Iam``, ``auth.generation``) so the other ``--workers`` processes reload before their
next request: it is in force for the next request on every worker.
"""

from __future__ import annotations

import json
import re

from rs3gw.access.policy import load_identity
from rs3gw.auth.users import AccessKey, KeyRing
from rs3gw.protocol.admin import AdminHandler, AdminRoute, _small_body
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response


def _json(status: int, doc: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(doc).encode())


def _created_key(key: AccessKey, secret: str) -> Response:
    return _json(201, {**key.to_json(), "secret_key": secret})


def user_routes(ring: KeyRing) -> list[AdminRoute]:
    iam = ring.iam

    async def list_users(ctx: Ctx, m: re.Match[str]) -> Response:
        keys = await iam.list_keys()
        users = [
            {**u.to_json(), "keys": sum(1 for k in keys if k.user == u.name)} for u in await iam.list_users()
        ]
        return _json(200, {"users": users})

    async def create_user(ctx: Ctx, m: re.Match[str]) -> Response:
        user = await iam.create_user(m["user"])
        await ring.refresh()
        return _json(201, user.to_json())

    async def delete_user(ctx: Ctx, m: re.Match[str]) -> Response:
        await iam.delete_user(m["user"])
        await ring.refresh()
        return Response(204)

    async def set_user(ctx: Ctx, m: re.Match[str]) -> Response:
        user = await iam.set_user_enabled(m["user"], m["action"] == "enable")
        await ring.refresh()
        return _json(200, user.to_json())

    async def put_policy(ctx: Ctx, m: re.Match[str]) -> Response:
        text = await _small_body(ctx)
        load_identity(text)  # the bucket-policy parser's rules, with no Principal
        await iam.put_user_policy(m["user"], text)
        await ring.refresh()
        return Response(204)

    async def get_policy(ctx: Ctx, m: re.Match[str]) -> Response:
        text = await iam.get_user_policy(m["user"])
        return Response(200, {"content-type": "application/json"}, text.encode())

    async def delete_policy(ctx: Ctx, m: re.Match[str]) -> Response:
        await iam.delete_user_policy(m["user"])
        await ring.refresh()
        return Response(204)

    async def list_user_keys(ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(200, {"keys": [k.to_json() for k in await iam.list_keys(m["user"])]})

    async def create_key(ctx: Ctx, m: re.Match[str]) -> Response:
        key, secret = await iam.create_key(m["user"])
        await ring.refresh()
        return _created_key(key, secret)

    async def list_keys(ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(200, {"keys": [k.to_json() for k in await iam.list_keys()]})

    async def get_key(ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(200, (await iam.get_key(m["ak"])).to_json())

    async def delete_key(ctx: Ctx, m: re.Match[str]) -> Response:
        await iam.delete_key(m["ak"])
        await ring.refresh()
        return Response(204)

    async def set_key(ctx: Ctx, m: re.Match[str]) -> Response:
        key = await iam.set_key_enabled(m["ak"], m["action"] == "enable")
        await ring.refresh()
        return _json(200, key.to_json())

    async def rotate_key(ctx: Ctx, m: re.Match[str]) -> Response:
        key, secret = await iam.rotate_key(m["ak"])
        await ring.refresh()
        return _created_key(key, secret)

    user = r"users/(?P<user>[^/]+)"
    ak = r"keys/(?P<ak>[^/]+)"
    table: list[tuple[str, str, AdminHandler]] = [
        ("GET", "users", list_users),
        ("PUT", user, create_user),
        ("DELETE", user, delete_user),
        ("POST", user + "/(?P<action>enable|disable)", set_user),
        ("PUT", user + "/policy", put_policy),
        ("GET", user + "/policy", get_policy),
        ("DELETE", user + "/policy", delete_policy),
        ("GET", user + "/keys", list_user_keys),
        ("POST", user + "/keys", create_key),
        ("GET", "keys", list_keys),
        ("GET", ak, get_key),
        ("DELETE", ak, delete_key),
        ("POST", ak + "/(?P<action>enable|disable)", set_key),
        ("POST", ak + "/rotate", rotate_key),
    ]
    return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

"""The raw ASGI application: addressing → routing → one signature check → handler → response.

Kept framework-free on purpose: a framework in the data path measurably costs throughput
(docs/architecture.md). Every route, in every auth mode, goes through ``_authenticate``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from rs3gw import errors
from rs3gw.auth.post_policy import authenticate_form
from rs3gw.auth.users import KeyRing
from rs3gw.auth.verify import AuthResult, SignedRequest, authenticate
from rs3gw.engine import Engine
from rs3gw.model import Account
from rs3gw.protocol.admin import ADMIN_BUCKET, AdminRoute, handle_admin
from rs3gw.protocol.authorize import ANONYMOUS, BODY_TAG_OP, Access, anonymous_auth
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers import HANDLERS, UNSIGNED_HANDLERS, add_cors_headers
from rs3gw.protocol.handlers.post_object import form_headers, form_key, read_form
from rs3gw.protocol.handlers.tagging import read_object_tagging
from rs3gw.protocol.observe import Observer, make_event
from rs3gw.protocol.request import Receive, Request, Scope, Send, fold_headers, parse_query, split_address
from rs3gw.protocol.response import ZEROCOPY, Response, error_response, prime, send_response
from rs3gw.protocol.router import route
from rs3gw.transform import TransformService

log = logging.getLogger("rs3gw.access")
_random_bits = random.getrandbits  # reseeded in forked children by the random module itself


def _signed(scope: Scope) -> bool:
    """Probes answer anonymous requests only, so a bucket named ``health`` stays reachable."""
    if any(k.lower() == b"authorization" for k, _ in scope["headers"]):
        return True
    qs: bytes = scope.get("query_string", b"")
    return b"X-Amz-Credential=" in qs or b"Signature=" in qs


def _settle_heap() -> None:
    """Move what start-up allocated (modules, caches, the botocore-sized service tables) out of
    the collector's sight and collect the young generation less often.

    Why: each request allocates a few hundred container objects; with the default threshold a
    young collection ran every couple of requests and each full one walked ~50,000 long-lived
    objects (3 % of a small-PUT server's time, measured with ``gc.callbacks``). Frozen objects
    are never scanned; nothing is leaked, cycles made later are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


GC_YOUNG_THRESHOLD = 20_000


class S3App:
    """ASGI 3 app. ``engine.start()``/``stop()`` run in the lifespan so ``/ready`` means ready."""

    def __init__(self, engine: Engine, accounts: list[Account], region: str, domain: str | None) -> None:
        self.engine = engine
        self.region = region
        self.domain = domain
        self.by_key = {a.access_key: a for a in accounts}
        self.primary = accounts[0] if accounts else None  # the admin API's only caller
        self.owners = {a.owner.id: a.owner for a in accounts}
        self.ready = False
        self.on_startup: list[Callable[[], Awaitable[None]]] = []
        self.observers: list[Observer] = []  # told about every S3 request after its response
        # Asked before any signature work: True answers 503 SlowDown (the audit log's brute-force throttle).
        self.throttled: Callable[[str], bool] | None = None
        self.admin_routes: list[AdminRoute] = []  # admin routes of features protocol cannot import
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []  # before the engine stops
        self.on_request_start: Callable[[], None] | None = None  # in-flight count; an observer ends it
        self.metrics_page: Callable[[], Awaitable[Response]] | None = None  # unauthenticated GET /metrics
        # The web console's static files (rs3gw.console): GET /console/..., None for any other path.
        self.console_page: Callable[[str], Response | None] | None = None
        self.key_ring: KeyRing | None = None  # store-managed users' keys, looked up after configured ones
        self.transforms: TransformService | None = None  # GET ?x-rs3gw-transform (rs3gw.transform)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                # Blob writes (fsync) and deletes block a pool thread each; asyncio's default of
                # cpu+4 threads would cap a 2-core box at 6 PUTs syncing at once.
                asyncio.get_running_loop().set_default_executor(
                    ThreadPoolExecutor(max_workers=32, thread_name_prefix="rs3gw-io")
                )
                try:
                    await self.engine.start()
                    for hook in self.on_startup:
                        await hook()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                _settle_heap()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.ready = False
                for hook in self.on_shutdown:
                    await hook()
                await self.engine.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Unique, not secret: Mersenne bits skip the getrandom() syscall that token_hex makes.
        request_id = f"{_random_bits(64):016X}"
        started = time.time()
        method = scope["method"]
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        head = method == "HEAD"
        if raw_path in ("/health", "/ready") and method in ("GET", "HEAD") and not _signed(scope):
            await send_response(send, self._probe(raw_path), request_id, head)
            return
        if raw_path == "/metrics" and self.metrics_page and method in ("GET", "HEAD") and not _signed(scope):
            await send_response(send, await self.metrics_page(), request_id, head)
            return
        if raw_path.startswith("/console") and self.console_page and method in ("GET", "HEAD"):
            page = None if _signed(scope) or self._on_vhost(scope) else self.console_page(raw_path)
            if page is not None:  # static files only: the page signs its S3 calls like any client
                await send_response(send, page, request_id, head)
                return
        if self.on_request_start is not None:
            self.on_request_start()
        resource = raw_path
        req: Request | None = None
        error_code = ""
        try:
            req = self._parse(scope, receive, raw_path, request_id)
            resource = unquote(raw_path)
            resp = await prime(await self._dispatch(req))
        except errors.S3Error as e:
            error_code = e.code
            resp = error_response(e, resource, request_id, head)
            if any(k == b"expect" and v.lower() == b"100-continue" for k, v in scope["headers"]):
                # The client held its body back and uvicorn would read the next request as that
                # body; closing the connection is what RFC 9110 section 10.1.1 leaves us.
                resp.headers["connection"] = "close"
        except Exception:
            log.exception("internal error request_id=%s %s", request_id, method)
            error_code = "InternalError"
            resp = error_response(errors.InternalError(), resource, request_id, head)
        if req is not None and "origin" in req.headers:
            await add_cors_headers(self.engine, req, resp)
        try:
            zerocopy = ZEROCOPY in (scope.get("extensions") or {})
            await send_response(send, resp, request_id, head, receive, zerocopy)
        except Exception:
            # Headers are out; all that is left is to cut the connection (the server does so).
            log.exception("response stream failed request_id=%s %s", request_id, method)
        if self.observers:
            self._observe(scope, req, resp, request_id, started, error_code)

    def _observe(
        self, scope: Scope, req: Request | None, resp: Response, request_id: str, started: float, code: str
    ) -> None:
        headers = req.headers if req is not None else {}
        size_in = headers.get("x-amz-decoded-content-length") or headers.get("content-length") or "0"
        client = scope.get("client") or ("", 0)
        event = make_event(
            {
                "request_id": request_id,
                "started": started,
                "duration": time.time() - started,
                "method": scope["method"],
                "operation": req.operation if req is not None else "",
                "bucket": req.bucket if req is not None else None,
                "key": req.key if req is not None else None,
                "principal": req.principal if req is not None else "",
                "access_key": req.access_key if req is not None else "",
                "client_ip": client[0] or "",
                "secure": scope.get("scheme") == "https",
                "status": resp.status,
                "error_code": code,
                "bytes_in": int(size_in) if size_in.isdigit() else 0,
                "bytes_out": resp.length if resp.length is not None else len(resp.body),
            }
        )
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("request observer failed request_id=%s", request_id)

    def _probe(self, path: str) -> Response:
        ok = path == "/health" or self.ready
        body = json.dumps({"status": "ok" if ok else "starting", "time": time.time()}).encode()
        return Response(200 if ok else 503, {"content-type": "application/json"}, body)

    def _parse(self, scope: Scope, receive: Receive, raw_path: str, request_id: str) -> Request:
        headers = fold_headers(scope["headers"])
        pairs = parse_query(scope.get("query_string", b""))
        path = raw_path.split("?", 1)[0]
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise errors.InvalidURI() from None
        bucket, key = split_address(decoded, headers.get("host", ""), self.domain)
        client = scope.get("client") or ("", 0)
        return Request(
            method=scope["method"],
            raw_path=path,
            query_pairs=pairs,
            query=dict(pairs),
            headers=headers,
            bucket=bucket,
            key=key,
            receive=receive,
            scheme=scope.get("scheme", "http"),
            client_ip=client[0] or "",
            request_id=request_id,
        )

    async def _dispatch(self, req: Request) -> Response:
        if req.method == "OPTIONS":  # a CORS preflight is never signed; its bucket's rules decide
            op = route(req.method, req.bucket, req.key, req.query, req.headers)
            return await UNSIGNED_HANDLERS[op](self.engine, req)
        if self.throttled is not None and self.throttled(req.client_ip):
            raise errors.SlowDown()
        if self._is_post_form(req):
            return await self._post_object(req)
        auth = await self._authenticate_fresh(req)  # None: no auth material at all, the anonymous principal
        account = self._account(auth.access_key) if auth is not None else ANONYMOUS
        if account is None:  # a store key disabled between the signature check and here
            raise errors.InvalidAccessKeyId()
        req.access_key, req.principal = account.access_key, account.owner.display_name
        if req.bucket == ADMIN_BUCKET and not self._vhost_bucket(req):
            req.operation = "Rs3gwAdmin"
            if auth is None:
                raise errors.AccessDenied()
            return await self._admin(req, auth)
        op = route(req.method, req.bucket, req.key, req.query, req.headers)
        req.operation = op
        handler = HANDLERS.get(op)
        if handler is None:
            raise errors.NotImplementedError_(f"{op} is not implemented by rs3gw")
        identity = self.key_ring.policies.get(account.owner.id) if self.key_ring is not None else None
        access = Access(self.engine, req, account, auth is None, self.owners, identity)
        body_tags = op == BODY_TAG_OP  # its body's tags are condition keys: read them, then authorize
        if not body_tags:
            await access.authorize(op)  # bucket policy, ACLs, Block Public Access (rs3gw.access)
        auth = auth if auth is not None else anonymous_auth(req)
        ctx = Ctx(req, self.engine, account, auth, op, self.region, owners=self.owners, access=access)
        ctx.transforms = self.transforms
        if body_tags:
            access.body_tags = await read_object_tagging(ctx)
            await access.authorize(op)
        return await handler(ctx)

    def _is_post_form(self, req: Request) -> bool:
        """POST Object (a browser upload): a multipart form POSTed to the bucket itself, without
        a sub-resource. Its credentials are form fields, not headers, so it is routed before the
        header signature check (which would see an anonymous request)."""
        if req.method != "POST" or not req.bucket or req.key:
            return False
        if not req.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return False
        if req.bucket == ADMIN_BUCKET and not self._vhost_bucket(req):
            return False
        try:
            return route(req.method, req.bucket, req.key, req.query, req.headers) == "PostObject"
        except errors.MethodNotAllowed:
            return False

    async def _post_object(self, req: Request) -> Response:
        """Read the form's fields, authenticate them (the policy's signature, auth.post_policy),
        then authorize the signer (or the anonymous principal) exactly as a PutObject of the form's
        key with the headers the form declares (ACL, SSE), before the file is streamed."""
        req.operation = "PostObject"
        form = await read_form(req)
        auth = await self._fresh(lambda: authenticate_form(form.fields, self._secret_for, self.region))
        account = self._account(auth.access_key) if auth is not None else ANONYMOUS
        if account is None:
            raise errors.InvalidAccessKeyId()
        req.access_key, req.principal = account.access_key, account.owner.display_name
        req.key = form_key(form)
        put_req = Request(
            method=req.method,
            raw_path=req.raw_path,
            query_pairs=req.query_pairs,
            query=req.query,
            headers=form_headers(form, req.headers.get("host", "")),
            bucket=req.bucket,
            key=req.key,
            receive=req.receive,
            scheme=req.scheme,
            client_ip=req.client_ip,
            request_id=req.request_id,
            operation=req.operation,
            principal=req.principal,
            access_key=req.access_key,
            form=form,
        )
        identity = self.key_ring.policies.get(account.owner.id) if self.key_ring is not None else None
        access = Access(self.engine, put_req, account, auth is None, self.owners, identity)
        await access.authorize("PutObject")
        auth = auth if auth is not None else anonymous_auth(put_req)
        ctx = Ctx(
            put_req, self.engine, account, auth, "PostObject", self.region, owners=self.owners, access=access
        )
        return await HANDLERS["PostObject"](ctx)

    async def _admin(self, req: Request, auth: AuthResult) -> Response:
        account = self._account(auth.access_key)
        if account is None:
            raise errors.InvalidAccessKeyId()
        ctx = Ctx(req, self.engine, account, auth, "Rs3gwAdmin", self.region, owners=self.owners)
        return await handle_admin(ctx, account is self.primary, self.admin_routes)

    def _authenticate(self, req: Request) -> AuthResult | None:
        """The single signature check every S3 route goes through; None for a request that carries
        no credentials at all (anonymous), which only a policy or ACL grant lets through."""
        signed = SignedRequest(
            req.method, req.raw_path, req.query_pairs, req.headers, self._vhost_bucket(req)
        )
        return authenticate(signed, self._secret_for, self.region, time.time())

    def _on_vhost(self, scope: Scope) -> bool:
        """A virtual-hosted bucket's host: its ``/console/...`` paths are that bucket's keys."""
        if not self.domain:
            return False
        host = next((v for k, v in scope["headers"] if k.lower() == b"host"), b"").decode("latin-1")
        return host.rsplit(":", 1)[0].lower().endswith("." + self.domain.lower())

    def _vhost_bucket(self, req: Request) -> str:
        if not (self.domain and req.bucket):
            return ""
        host = req.headers.get("host", "").rsplit(":", 1)[0].lower()
        return req.bucket if host.endswith("." + self.domain.lower()) else ""

    async def _authenticate_fresh(self, req: Request) -> AuthResult | None:
        """An unknown access key may have just been made on another gateway: reload store keys
        (rate-limited) and check once more."""
        return await self._fresh(lambda: self._authenticate(req))

    async def _fresh(self, check: Callable[[], AuthResult | None]) -> AuthResult | None:
        """``check`` once more after reloading store keys, when it names a key unknown here."""
        if self.key_ring is not None and self.key_ring.stale():  # IAM changed in a sibling process
            await self.key_ring.catch_up()
        try:
            return check()
        except errors.InvalidAccessKeyId:
            if self.key_ring is None or not await self.key_ring.refresh_on_miss():
                raise
            return check()

    def _account(self, access_key: str) -> Account | None:
        """Configured accounts first (they stay authoritative), then store-managed keys."""
        acct = self.by_key.get(access_key)
        if acct is None and self.key_ring is not None:
            acct = self.key_ring.get(access_key)
        return acct

    def _secret_for(self, access_key: str) -> str | None:
        acct = self._account(access_key)
        return acct.secret_key if acct else None

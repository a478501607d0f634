"""Store-managed users and access keys, and the cached key map the request path reads.

Users and keys live in the metadata store as server documents, so every gateway on one PostgreSQL
database sees the same set. A SigV4 signature is an HMAC keyed by the plaintext secret, so secrets
cannot be hashed: each is sealed with AES-256-GCM under the key-encryption key ``rs3gw/iam`` of
the key provider (``keys.json`` in the data dir for the local provider), bound to its access key
by the AAD. A secret is returned once, when its key is created, and never logged.

Accounts from the configuration (flags, environment, TOML) stay authoritative: store users may not
take a configured name, and a configured access key is always looked up first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rs3gw import errors
from rs3gw.auth.generation import IamGeneration
from rs3gw.blobs.keys import KeyError_, KeyProvider
from rs3gw.meta.store import MetadataStore
from rs3gw.model import Account, Owner

log = logging.getLogger("rs3gw.iam")

USER_DOC = "iam-user"
KEY_DOC = "iam-key"
POLICY_DOC = "user-policy"  # identity policy JSON, keyed by user (or configured account) name
SECRET_KEK = "rs3gw/iam"  # the key-encryption key sealing stored secrets
USER_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")  # IAM's user-name alphabet
ACCESS_KEY = re.compile(r"[A-Z0-9]{16,128}")
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
REFRESH_SECONDS = 10.0  # default of --iam-refresh-interval: changes made elsewhere apply within it
MISS_REFRESH_SECONDS = 1.0  # an unknown access key reloads the map at most this often


@dataclass(frozen=True)
class User:
    name: str
    created: float
    enabled: bool

    @property
    def canonical_id(self) -> str:
        return Owner.for_account(self.name).id

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "canonical_id": self.canonical_id,
            "enabled": self.enabled,
            "created": self.created,
        }


@dataclass(frozen=True)
class AccessKey:
    """A stored key; ``sealed`` is the encrypted secret (never the plaintext)."""

    access_key: str
    user: str
    created: float
    enabled: bool
    kek_ref: str
    sealed: str

    def to_json(self) -> dict[str, object]:
        return {
            "access_key": self.access_key,
            "user": self.user,
            "enabled": self.enabled,
            "created": self.created,
        }


def _user_doc(u: User) -> str:
    return json.dumps({"created": u.created, "enabled": u.enabled})


def _user_from(name: str, text: str) -> User:
    d = json.loads(text)
    return User(name, float(d["created"]), bool(d["enabled"]))


def _key_doc(k: AccessKey) -> str:
    return json.dumps(
        {"user": k.user, "created": k.created, "enabled": k.enabled, "kek": k.kek_ref, "secret": k.sealed}
    )


def _key_from(access_key: str, text: str) -> AccessKey:
    d = json.loads(text)
    return AccessKey(
        access_key, str(d["user"]), float(d["created"]), bool(d["enabled"]), str(d["kek"]), str(d["secret"])
    )


def _aad(access_key: str) -> bytes:
    return f"rs3gw-iam-secret:{access_key}".encode()


def new_access_key() -> str:
    return "RS3" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(17))


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)  # 40 characters, 240 bits


class Iam:
    """User and key operations shared by the admin API and the ``rs3gw admin user|key`` commands.

    Every change bumps ``generation`` (the data dir's IAM counter, when given) after its store
    write, so each serving process of that data dir reloads its key map before its next request,
    whichever process (a worker, the CLI) made the change."""

    def __init__(
        self,
        store: MetadataStore,
        provider: KeyProvider,
        configured_names: Iterable[str] = (),
        configured_keys: Iterable[str] = (),
        generation: IamGeneration | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.configured_names = frozenset(configured_names)
        self.configured_keys = frozenset(configured_keys)
        self.generation = generation

    def _changed(self) -> None:
        """Tell the other processes of this data dir; the change itself is committed already, so
        a counter that cannot be written costs only promptness (the periodic reload still runs)."""
        if self.generation is None:
            return
        try:
            self.generation.bump()
        except OSError as exc:
            log.warning("IAM generation %s not bumped (%s)", self.generation.path, exc)

    # -- users -------------------------------------------------------------------------------------
    async def create_user(self, name: str) -> User:
        if not USER_NAME.fullmatch(name):
            raise errors.InvalidArgument(
                "user names are 1-64 characters of A-Z a-z 0-9 + = , . @ _ -",
                ArgumentName="user",
                ArgumentValue=name[:64],
            )
        if name in self.configured_names:
            raise errors.EntityAlreadyExists(f"user {name!r} is a configured account")
        user = User(name, time.time(), True)
        if not await self.store.put_server_doc(USER_DOC, name, _user_doc(user), create=True):
            raise errors.EntityAlreadyExists(f"user {name!r} already exists")
        self._changed()
        return user

    async def get_user(self, name: str) -> User:
        text = await self.store.get_server_doc(USER_DOC, name)
        if text is None:
            raise errors.NoSuchEntity(f"no user named {name!r}")
        return _user_from(name, text)

    async def list_users(self) -> list[User]:
        docs = await self.store.list_server_docs(USER_DOC)
        return sorted((_user_from(n, t) for n, t in docs.items()), key=lambda u: u.name)

    async def set_user_enabled(self, name: str, enabled: bool) -> User:
        user = await self.get_user(name)
        user = User(user.name, user.created, enabled)
        await self.store.put_server_doc(USER_DOC, name, _user_doc(user))
        self._changed()
        return user

    async def delete_user(self, name: str) -> list[str]:
        """Deletes the user's keys first, so no key outlives its user; returns their ids."""
        await self.get_user(name)
        gone = [k.access_key for k in await self.list_keys(name)]
        try:
            for ak in gone:
                await self.store.put_server_doc(KEY_DOC, ak, None)
            await self.store.put_server_doc(POLICY_DOC, name, None)
            await self.store.put_server_doc(USER_DOC, name, None)
        finally:  # keys already deleted when a later write fails must stop working everywhere too
            self._changed()
        return gone

    # -- identity policies ---------------------------------------------------------------------------
    async def _check_policy_owner(self, name: str) -> None:
        if name not in self.configured_names:
            await self.get_user(name)

    async def put_user_policy(self, name: str, text: str) -> None:
        """Stores an already validated policy document (the caller parses it: auth cannot)."""
        await self._check_policy_owner(name)
        await self.store.put_server_doc(POLICY_DOC, name, text)
        self._changed()

    async def get_user_policy(self, name: str) -> str:
        await self._check_policy_owner(name)
        text = await self.store.get_server_doc(POLICY_DOC, name)
        if text is None:
            raise errors.NoSuchEntity(f"user {name!r} has no policy")
        return text

    async def delete_user_policy(self, name: str) -> None:
        await self.get_user_policy(name)
        await self.store.put_server_doc(POLICY_DOC, name, None)
        self._changed()

    async def list_user_policies(self) -> dict[str, str]:
        return await self.store.list_server_docs(POLICY_DOC)

    # -- keys --------------------------------------------------------------------------------------
    async def create_key(self, user: str) -> tuple[AccessKey, str]:
        """A new key pair for ``user``; the plaintext secret is returned here and nowhere else."""
        await self.get_user(user)
        secret = new_secret_key()
        while True:
            ak = new_access_key()
            ref, wrapped = self.provider.wrap(SECRET_KEK, secret.encode(), _aad(ak))
            key = AccessKey(ak, user, time.time(), True, ref, base64.b64encode(wrapped).decode())
            if ak not in self.configured_keys and await self.store.put_server_doc(
                KEY_DOC, ak, _key_doc(key), create=True
            ):
                self._changed()
                return key, secret

    async def get_key(self, access_key: str) -> AccessKey:
        text = (
            await self.store.get_server_doc(KEY_DOC, access_key) if ACCESS_KEY.fullmatch(access_key) else None
        )
        if text is None:
            raise errors.NoSuchEntity(f"no access key {access_key!r}")
        return _key_from(access_key, text)

    async def list_keys(self, user: str | None = None) -> list[AccessKey]:
        if user is not None:
            await self.get_user(user)
        docs = await self.store.list_server_docs(KEY_DOC)
        keys = (_key_from(ak, t) for ak, t in docs.items())
        return sorted((k for k in keys if user is None or k.user == user), key=lambda k: (k.user, k.created))

    async def set_key_enabled(self, access_key: str, enabled: bool) -> AccessKey:
        k = await self.get_key(access_key)
        k = AccessKey(k.access_key, k.user, k.created, enabled, k.kek_ref, k.sealed)
        await self.store.put_server_doc(KEY_DOC, access_key, _key_doc(k))
        self._changed()
        return k

    async def delete_key(self, access_key: str) -> None:
        await self.get_key(access_key)
        await self.store.put_server_doc(KEY_DOC, access_key, None)
        self._changed()

    async def rotate_key(self, access_key: str) -> tuple[AccessKey, str]:
        """AWS's rotation: a second key for the same user; the old one stays valid until it is
        disabled or deleted, so clients can move over without an outage."""
        old = await self.get_key(access_key)
        return await self.create_key(old.user)

    def secret_of(self, key: AccessKey) -> str:
        """The plaintext secret, for the signature check only; raises KeyError_ when it won't open."""
        return self.provider.unwrap(key.kek_ref, base64.b64decode(key.sealed), _aad(key.access_key)).decode()


class KeyRing:
    """The request path's view of store keys: a dict swapped whole on each reload.

    Reloaded right after a change made through this process (the admin API), before the next
    signature check after another process of the same data dir (a ``--workers`` sibling, the
    ``rs3gw admin`` commands) bumped the IAM generation, every ``interval`` seconds
    (--iam-refresh-interval) and, at most once a second, when a request names an unknown key: a key
    made on another gateway works at once, one disabled on another host stops within the interval."""

    def __init__(self, iam: Iam, owners: dict[str, Owner], interval: float = REFRESH_SECONDS) -> None:
        self.iam = iam
        self.owners = owners  # the app's canonical id -> owner map, kept in step with store users
        self.interval = interval
        self._accounts: dict[str, Account] = {}
        # canonical id -> identity policy text, swapped whole with the keys on each reload
        self.policies: dict[str, str] = {}
        self._last_miss = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._generation = -1  # the IAM generation the current map was loaded at; -1: never loaded
        self._retry_after = 0.0  # a failed catch-up reload is not retried before this (monotonic)
        self._reload_failing = False  # logged once per run of failures
        # Told the store users' canonical ids after each reload (background workers that walk
        # every owner's buckets, such as lifecycle).
        self.on_refresh: list[Callable[[list[str]], None]] = []

    def get(self, access_key: str) -> Account | None:
        return self._accounts.get(access_key)

    def stale(self) -> bool:
        """Whether another process of this data dir changed IAM state since the map was loaded:
        one read of a mapped page, cheap enough for every request."""
        gen = self.iam.generation
        return gen is not None and gen.current() != self._generation

    async def catch_up(self) -> None:
        """Reload for a generation bump. Requests arriving during the reload wait for it instead of
        each starting another. A failed reload keeps the previous map (as the periodic reload does)
        and is not retried for ``MISS_REFRESH_SECONDS``: the requests waiting for it, and those in
        the next second, go on with that map rather than each adding a reload (and a traceback) to
        a store that is failing."""
        async with self._lock:
            if not self.stale() or time.monotonic() < self._retry_after:
                return
            try:
                ids = await self._load()
            except Exception as exc:
                self._retry_after = time.monotonic() + MISS_REFRESH_SECONDS
                if not self._reload_failing:
                    log.warning(
                        "reloading access keys after an IAM change failed (%s); keeping the previous set", exc
                    )
                self._reload_failing = True
                return
            self._reload_failing = False
        for hook in self.on_refresh:
            hook(ids)

    async def refresh(self) -> None:
        async with self._lock:
            ids = await self._load()
        for hook in self.on_refresh:
            hook(ids)

    async def _load(self) -> list[str]:
        """Read users, keys and policies and swap them in; returns the store users' canonical ids.
        The generation is read first, so a change committed during the load is seen as a new one."""
        gen = self.iam.generation
        loading = gen.current() if gen is not None else 0
        users = {u.name: u for u in await self.iam.list_users()}
        accounts: dict[str, Account] = {}
        for key in await self.iam.list_keys():
            user = users.get(key.user)
            if not key.enabled or user is None or not user.enabled or user.name in self.iam.configured_names:
                continue  # a store user named like a configured account never acts as it
            try:
                secret = self.iam.secret_of(key)
            except (KeyError_, ValueError) as exc:
                log.warning(
                    "access key %s: stored secret does not open (%s); key ignored", key.access_key, exc
                )
                continue
            accounts[key.access_key] = Account(Owner.for_account(key.user), key.access_key, secret)
        ids = []
        for name in users:
            owner = Owner.for_account(name)
            self.owners.setdefault(owner.id, owner)
            ids.append(owner.id)
        policies = {Owner.for_account(n).id: t for n, t in (await self.iam.list_user_policies()).items()}
        self._accounts = accounts
        self.policies = policies
        self._generation = loading
        return ids

    async def refresh_on_miss(self) -> bool:
        """Reload for an access key nobody here knows; False when a reload ran too recently."""
        now = time.monotonic()
        if now - self._last_miss < MISS_REFRESH_SECONDS:
            return False
        self._last_miss = now
        await self.refresh()
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("reloading access keys failed; keeping the previous set")

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

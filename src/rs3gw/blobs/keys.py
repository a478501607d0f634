"""Key-encryption keys (KEKs) for envelope encryption: the provider interface and the local key file.

Every encrypted blob has its own random data key; only that data key is wrapped by a KEK. A KEK is
named (``aws/s3`` for SSE-S3, the client's key id for SSE-KMS) and versioned: rotation adds a
version and makes it current, so blobs can be re-wrapped one by one while older versions still
unwrap. A blob header records the reference ``NAME#VERSION`` of the KEK that wrapped its key.

A KMS or Vault provider implements ``KeyProvider`` (wrap/unwrap happen at the provider, so key
material never has to leave it); ``LocalKeyProvider`` keeps the KEKs in ``keys.json`` (mode 0600)
in the data directory, created on first use.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import secrets
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SSE_S3_KEY = "aws/s3"  # the KEK name SSE-S3 uses, like AWS's managed key alias
KEY_NAME = re.compile(r"[A-Za-z0-9:/_.\-]{1,100}")
KEY_FILE = "keys.json"
RELOAD_EVERY = 1.0  # seconds between checks for a key file changed by another process


class KeyError_(Exception):
    """A KEK is unknown, or a wrapped key does not open with it (tampered or wrong key)."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    version: int
    created: str  # ISO 8601 UTC
    current: bool

    @property
    def ref(self) -> str:
        return f"{self.name}#{self.version}"


def split_ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition("#")
    if not name or not version.isdigit():
        raise KeyError_(f"malformed key reference {ref!r}")
    return name, int(version)


class KeyProvider(ABC):
    """Wraps and unwraps data keys under named, versioned KEKs."""

    @abstractmethod
    def wrap(self, name: str, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """Wrap under the current version of ``name`` (created on first reference by providers that
        allow it); returns (reference, wrapped key)."""

    @abstractmethod
    def unwrap(self, ref: str, wrapped: bytes, aad: bytes) -> bytes:
        """The data key; raises KeyError_ when the KEK is unknown or the wrapped key is not authentic."""

    @abstractmethod
    def current_ref(self, name: str) -> str | None:
        """The reference new wraps under ``name`` would get; None when the name does not exist."""

    @abstractmethod
    def rotate(self, names: list[str] | None = None) -> list[KeyInfo]:
        """Add a new current version to each named KEK (all when None); returns the new versions."""

    @abstractmethod
    def keys(self) -> list[KeyInfo]: ...


def wrap_with(kek: bytes, data_key: bytes, aad: bytes) -> bytes:
    """AES-256-GCM wrap: nonce (12) | ciphertext+tag (48) for a 32-byte data key."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def unwrap_with(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    if len(wrapped) < 12 + 16:
        raise KeyError_("wrapped key is truncated")
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
    except InvalidTag:
        raise KeyError_("wrapped data key does not open with this key") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LocalKeyProvider(KeyProvider):
    """KEKs in ``<data dir>/keys.json``; changes are made under an flock, written to a temp file,
    fsynced and renamed, so several server processes and ``rs3gw admin key-rotate`` can share it.
    Each process re-reads the file when it changes (a rotation by the CLI is seen without restart)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEY_FILE
        self._lock_path = data_dir / (KEY_FILE + ".lock")
        self._mutex = threading.Lock()
        self._keys: dict[str, list[dict[str, object]]] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    # -- file ------------------------------------------------------------------------------------
    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_EVERY:
            return
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp and not force:
            return
        if stamp is None:
            self._keys, self._stamp = {}, None
            return
        data = json.loads(self.path.read_text())
        self._keys = {str(k): list(v) for k, v in data.get("keys", {}).items()}
        self._stamp = stamp

    def _save(self) -> None:
        tmp = self.path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"format": 1, "keys": self._keys}, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._stamp = self._stat()

    def _change(self, fn: object) -> object:
        """Run ``fn`` on freshly loaded keys under the file lock, then save."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._load(force=True)
            out = fn()  # type: ignore[operator]
            self._save()
            return out
        finally:
            os.close(fd)

    @staticmethod
    def _new_version(n: int) -> dict[str, object]:
        return {
            "version": n,
            "created": _now(),
            "material": base64.b64encode(secrets.token_bytes(32)).decode(),
        }

    # -- lookups -----------------------------------------------------------------------------------
    def _current(self, name: str) -> dict[str, object] | None:
        versions = self._keys.get(name)
        return versions[-1] if versions else None

    def _material(self, ref: str) -> bytes | None:
        name, version = split_ref(ref)
        for v in self._keys.get(name, []):
            if v["version"] == version:
                return base64.b64decode(str(v["material"]))
        return None

    def _ensure(self, name: str) -> dict[str, object]:
        if not KEY_NAME.fullmatch(name):
            raise KeyError_(f"invalid key name {name!r}")
        cur = self._current(name)
        if cur is not None:
            return cur

        def create() -> dict[str, object]:
            found = self._current(name)
            if found is None:
                found = self._new_version(1)
                self._keys[name] = [found]
            return found

        return self._change(create)  # type: ignore[return-value]

    # -- interface ---------------------------------------------------------------------------------
    def wrap(self, name: str, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        with self._mutex:
            self._load()
            cur = self._ensure(name)
        kek = base64.b64decode(str(cur["material"]))
        return f"{name}#{cur['version']}", wrap_with(kek, data_key, aad)

    def unwrap(self, ref: str, wrapped: bytes, aad: bytes) -> bytes:
        with self._mutex:
            self._load()
            kek = self._material(ref)
            if kek is None:  # written by a process that rotated since we last looked
                self._load(force=True)
                kek = self._material(ref)
        if kek is None:
            raise KeyError_(f"unknown key {ref!r}")
        return unwrap_with(kek, wrapped, aad)

    def current_ref(self, name: str) -> str | None:
        with self._mutex:
            self._load()
            cur = self._current(name)
        return None if cur is None else f"{name}#{cur['version']}"

    def rotate(self, names: list[str] | None = None) -> list[KeyInfo]:
        def run() -> list[KeyInfo]:
            chosen = list(self._keys) if names is None else names
            if names is None and SSE_S3_KEY not in chosen:
                chosen.append(SSE_S3_KEY)
            out = []
            for name in chosen:
                if not KEY_NAME.fullmatch(name):
                    raise KeyError_(f"invalid key name {name!r}")
                versions = self._keys.setdefault(name, [])
                v = self._new_version(int(str(versions[-1]["version"])) + 1 if versions else 1)
                versions.append(v)
                out.append(KeyInfo(name, int(str(v["version"])), str(v["created"]), True))
            return out

        with self._mutex:
            return self._change(run)  # type: ignore[return-value]

    def keys(self) -> list[KeyInfo]:
        with self._mutex:
            self._load(force=True)
            return [
                KeyInfo(name, int(str(v["version"])), str(v["created"]), i == len(vs) - 1)
                for name, vs in sorted(self._keys.items())
                for i, v in enumerate(vs)
            ]

"""The request as the S3 layer sees it: addressing resolved, headers folded, body as a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from rs3gw import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Marks the http.disconnect the server hands the app when a request body stalled past its timeout
# (the same name as rs3gw.httpserver.BODY_TIMEOUT): AWS's 400 RequestTimeout, not a vanished client.
BODY_TIMEOUT = "rs3gw.body_timeout"
_REQUEST_TIMEOUT = (  # AWS's words, closing sentence included
    "Your socket connection to the server was not read from or written to within the timeout period."
    " Idle connections will be closed."
)


@dataclass
class PostForm:
    """A POST Object form (browser upload) read up to its file part: the fields before the file
    (lower-case names, small and buffered) and the file's bytes still to be streamed."""

    fields: dict[str, str]
    filename: str
    file: AsyncIterator[bytes]


@dataclass
class Request:
    method: str
    raw_path: str  # percent-encoded, as on the wire
    query_pairs: list[tuple[str, str]]
    query: dict[str, str]
    headers: dict[str, str]
    bucket: str | None
    key: str | None
    receive: Receive
    scheme: str = "http"
    client_ip: str = ""
    request_id: str = ""
    # Filled in as the request is handled, for observers (audit, metrics).
    operation: str = ""
    principal: str = ""
    access_key: str = ""
    form: PostForm | None = None  # set for POST Object once its form fields are read
    _consumed: bool = field(default=False, repr=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    async def raw_body(self) -> AsyncIterator[bytes]:
        """The body exactly as received (still aws-chunked framed if the client used it)."""
        if self._consumed:
            return
        self._consumed = True
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                if msg.get(BODY_TIMEOUT):
                    raise errors.error_class("RequestTimeout")(_REQUEST_TIMEOUT)
                raise errors.IncompleteBody()
            chunk = msg.get("body", b"")
            if chunk:
                yield chunk
            if not msg.get("more_body", False):
                return


def parse_query(qs: bytes) -> list[tuple[str, str]]:
    """Decode a query string; '+' stays '+' (SigV4 and S3 treat it literally)."""
    if not qs:
        return []
    out: list[tuple[str, str]] = []
    for part in qs.decode("latin-1").split("&"):
        if not part:
            continue
        k, sep, v = part.partition("=")
        out.append((_dec(k), _dec(v) if sep else ""))
    return out


def _dec(s: str) -> str:
    try:
        return unquote(s, errors="strict")
    except UnicodeDecodeError:
        raise errors.InvalidURI() from None


def fold_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; repeated headers fold into one comma-joined value, in arrival order."""
    out = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    if len(out) == len(raw):  # no name repeated (nearly every request): done in one pass
        return out
    out = {}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def split_address(path: str, host: str, domain: str | None) -> tuple[str | None, str | None]:
    """(bucket, key) from virtual-host style (``bucket.domain``) or path style."""
    hostname = (host.rsplit(":", 1)[0] if not host.endswith("]") else host).lower()
    if domain and hostname.endswith("." + domain.lower()):
        bucket = hostname[: -len(domain) - 1]
        key = path[1:] if path.startswith("/") else path
        return bucket or None, key or None
    trimmed = path[1:] if path.startswith("/") else path
    if not trimmed:
        return None, None
    bucket, _, key = trimmed.partition("/")
    return bucket, key or None

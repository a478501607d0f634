"""Metadata-store URLs as logs may show them (no psycopg import: the banner prints this for SQLite too)."""

from __future__ import annotations

import urllib.parse


def redact(url: str) -> str:
    """Scheme, user, host, port and database of a postgresql:// URL, never its password or options."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# rs3gw's own URL parameters, removed before the URL reaches libpq (which rejects unknown ones).
OWN_PARAMS = ("gc_grace",)


def split_params(url: str) -> tuple[str, dict[str, str]]:
    """The URL without rs3gw's parameters, and those parameters (e.g. ``?gc_grace=0``)."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in pairs if k in OWN_PARAMS}
    rest = urllib.parse.urlencode([(k, v) for k, v in pairs if k not in OWN_PARAMS])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), own

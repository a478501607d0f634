"""The web console's static files, served unauthenticated at ``GET /console/...``.

The files hold no data: the page's JavaScript signs ordinary S3 and admin API requests with SigV4
itself (static/sigv4.js), so every data access still goes through the gateway's one signature
check. The files are read once at startup; only the exact asset names are answered, so any other
``/console/...`` path (a bucket named ``console``) still reaches S3 routing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from rs3gw.protocol.response import Response

PREFIX = "/console/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
# Same-origin only, no inline script or style attributes, never framed: object keys and names
# rendered by the page are user data, so the policy backs up the page's escaping.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: bytes


class ConsoleSite:
    """The assets in memory, keyed by request path."""

    def __init__(self, region: str) -> None:
        self.assets: dict[str, Asset] = {}
        for entry in resources.files(__package__).joinpath("static").iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in TYPES:
                self.assets[PREFIX + entry.name] = Asset(TYPES[suffix], entry.read_bytes())
        self.assets[PREFIX] = self.assets[PREFIX + "index.html"]
        # The page signs for this region; it is no secret (every S3 error names it anyway).
        config = json.dumps({"region": region}).encode()
        self.assets[PREFIX + "config.json"] = Asset(TYPES[".json"], config)

    def page(self, raw_path: str) -> Response | None:
        """The asset for ``raw_path`` (query string ignored), a redirect for ``/console``, else None."""
        path = raw_path.split("?", 1)[0]
        if path == PREFIX.rstrip("/"):
            return Response(301, {"location": PREFIX, **SECURITY_HEADERS})
        asset = self.assets.get(path)
        if asset is None:
            return None
        return Response(200, {"content-type": asset.content_type, **SECURITY_HEADERS}, asset.body)

"""Generate src/rs3gw/protocol/routes_generated.py (the S3 routing table) from botocore's S3 model.

Usage: .venv/bin/python scripts/gen_routes.py [--check]   (--check: exit 1 if the file is stale)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import botocore  # type: ignore[import-untyped]
import botocore.loaders  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "src" / "rs3gw" / "protocol" / "routes_generated.py"

# Model operations deliberately left out of the table, with the reason.
SKIPPED: dict[str, str] = {
    "WriteGetObjectResponse": "S3 Object Lambda: host-prefixed endpoint ({RequestRoute}.), not a bucket endpoint",
    "ListDirectoryBuckets": "S3 Express control-plane endpoint; on the wire identical to ListBuckets (GET /)",
    "GetBucketLifecycle": "deprecated; same request as GetBucketLifecycleConfiguration (GET /{Bucket}?lifecycle)",
    "PutBucketLifecycle": "deprecated; same request as PutBucketLifecycleConfiguration (PUT /{Bucket}?lifecycle)",
    "GetBucketNotification": "deprecated; same request as GetBucketNotificationConfiguration",
    "PutBucketNotification": "deprecated; same request as PutBucketNotificationConfiguration",
}

# Pseudo-operations that are not in the model: (operation, method, scope, query, headers).
EXTRA: tuple[tuple[str, str, str, tuple[tuple[str, str | None], ...], tuple[str, ...]], ...] = (
    ("PreflightRequest", "OPTIONS", "bucket", (), ()),
    ("PreflightRequest", "OPTIONS", "object", (), ()),
    # Browser form upload; router also requires content-type to start with multipart/form-data.
    ("PostObject", "POST", "bucket", (), ("content-type",)),
)

# Query keys that are not sub-resources in the URI but still select a different operation
# (a request carrying them must not fall back to e.g. PutObject).
EXTRA_SUBRESOURCES = ("uploadId",)

_SCOPES = {"/": "service", "/{Bucket}": "bucket", "/{Bucket}/{Key+}": "object"}

Route = tuple[str, str, str, tuple[tuple[str, str | None], ...], tuple[str, ...]]


def _parse_query(qs: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in qs.split("&"):
        if not item:
            continue
        k, eq, v = item.partition("=")
        if k == "x-id":  # SDK hint naming the operation, not a real requirement
            continue
        out.append((k, v if eq else None))
    return out


def _required(model: dict[str, Any], op: dict[str, Any], location: str) -> list[str]:
    if "input" not in op:
        return []
    shape = model["shapes"][op["input"]["shape"]]
    members = shape.get("members", {})
    names = []
    for name in shape.get("required", []):
        m = members[name]
        if m.get("location") == location:
            names.append(str(m.get("locationName", name)))
    return names


def build(model: dict[str, Any]) -> tuple[list[Route], list[str]]:
    """(routes sorted by operation, sub-resource keys) for the given service model."""
    base: dict[str, tuple[str, str, list[tuple[str, str | None]]]] = {}
    for name, op in model["operations"].items():
        if name in SKIPPED:
            continue
        http = op["http"]
        path, _, qs = http["requestUri"].partition("?")
        if path not in _SCOPES or op.get("endpoint", {}).get("hostPrefix"):
            raise SystemExit(
                f"{name}: {http['requestUri']} is not a path-style bucket route; add it to SKIPPED"
            )
        base[name] = (http["method"], _SCOPES[path], _parse_query(qs))

    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for name, (method, scope, query) in base.items():
        groups.setdefault((method, scope, tuple(sorted(k for k, _ in query))), []).append(name)

    routes: list[Route] = []
    for name, (method, scope, query) in base.items():
        op = model["operations"][name]
        ambiguous = len(groups[(method, scope, tuple(sorted(k for k, _ in query)))]) > 1
        headers: list[str] = []
        if ambiguous or not query:
            # Required query members (uploadId, partNumber, id ...) tell UploadPart from PutObject,
            # GetBucketAnalyticsConfiguration from ListBucketAnalyticsConfigurations, etc.
            known = {k for k, _ in query}
            query = query + [(k, None) for k in _required(model, op, "querystring") if k not in known]
        if ambiguous:
            headers = [h.lower() for h in _required(model, op, "header")]
        routes.append((name, method, scope, tuple(sorted(query)), tuple(sorted(headers))))
    routes.sort()

    seen: dict[tuple[str, str, frozenset[tuple[str, str | None]], frozenset[str]], str] = {}
    for name, method, scope, rq, hdrs in routes:
        sig = (method, scope, frozenset(rq), frozenset(hdrs))
        if sig in seen:
            raise SystemExit(f"{name} and {seen[sig]} have the same route {sig}; add one to SKIPPED")
        seen[sig] = name

    subresources = {k for op in model["operations"].values() for k, v in _uri_query(op) if v is None}
    subresources.update(EXTRA_SUBRESOURCES)
    return routes + list(EXTRA), sorted(subresources)


def _uri_query(op: dict[str, Any]) -> list[tuple[str, str | None]]:
    return _parse_query(str(op["http"]["requestUri"]).partition("?")[2])


def _str_or_none(v: str | None) -> str:
    return "None" if v is None else f'"{v}"'


def _tuple_src(items: tuple[str, ...]) -> str:
    if not items:
        return "()"
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


def render(routes: list[Route], subresources: list[str]) -> str:
    lines = [
        f"# Generated by scripts/gen_routes.py from botocore {botocore.__version__} (s3 2006-03-01). DO NOT EDIT.",
        "# Regenerate with: .venv/bin/python scripts/gen_routes.py",
        '"""The S3 routing table (path-style requests), generated from botocore\'s service model."""',
        "",
        "from __future__ import annotations",
        "",
        "from rs3gw.protocol.router import RouteSpec",
        "",
        "# Query keys that select an operation: a request carrying one only matches specs requiring it.",
        "SUBRESOURCES: frozenset[str] = frozenset(",
        "    (",
        *[f'        "{k}",' for k in subresources],
        "    )",
        ")",
        "",
        "# Model operations intentionally not routed.",
        "SKIPPED: dict[str, str] = {",
        *[f'    "{k}": "{v}",' for k, v in sorted(SKIPPED.items())],
        "}",
        "",
        "ROUTES: tuple[RouteSpec, ...] = (",
    ]
    for name, method, scope, query, headers in routes:
        q = _tuple_src(tuple(f'("{k}", {_str_or_none(v)})' for k, v in query))
        h = _tuple_src(tuple(f'"{x}"' for x in headers))
        lines += [
            "    RouteSpec(",
            f'        operation="{name}",',
            f'        method="{method}",',
            f'        scope="{scope}",',
            f"        query={q},",
        ]
        if headers:
            lines.append(f"        headers={h},")
        lines.append("    ),")
    lines.append(")")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the checked-in file is out of date")
    args = ap.parse_args(argv)
    model = botocore.loaders.Loader().load_service_model("s3", "service-2")
    text = render(*build(model))
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale; run scripts/gen_routes.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({text.count('RouteSpec(')} routes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

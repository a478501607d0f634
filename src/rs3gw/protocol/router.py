"""Maps a path-style S3 request (method, bucket, key, query, headers) to its AWS operation name.

The table itself is generated from botocore's service model into ``routes_generated.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rs3gw.errors import MethodNotAllowed

__all__ = ["RouteSpec", "route", "routes", "scope_of"]


@dataclass(frozen=True)
class RouteSpec:
    """One routable operation: what a request must carry to be this operation."""

    operation: str  # AWS name, e.g. "PutObject"
    method: str  # "GET", "PUT", ...
    scope: str  # "service" | "bucket" | "object"
    # Required query keys; value None = key present with any value, else this exact value.
    query: tuple[tuple[str, str | None], ...]
    headers: tuple[str, ...] = ()  # required header names (lower-case)

    @property
    def specificity(self) -> int:
        """How many requirements the spec has; the most specific matching spec wins."""
        return len(self.query) + len(self.headers)


# Pseudo-operations whose match needs more than a header's presence:
# operation -> (header, prefix the lower-cased header value must start with).
_HEADER_VALUE_PREFIX: dict[str, tuple[str, str]] = {
    "PostObject": ("content-type", "multipart/form-data"),
}

# One compiled candidate: (operation, query requirements, header requirements, optional
# (header, value prefix) check).
_Candidate = tuple[str, tuple[tuple[str, str | None], ...], tuple[str, ...], tuple[str, str] | None]

# (method, scope) -> {sub-resource keys the request carries -> candidates, most specific first}.
# A spec requires all of its sub-resource keys and tolerates no others, so the request's set of
# sub-resource keys selects exactly one bucket of candidates.
_Index = dict[tuple[str, str], dict[frozenset[str], tuple[_Candidate, ...]]]
_INDEX: _Index | None = None
_SUBRESOURCES: frozenset[str] = frozenset()
_NONE: frozenset[str] = frozenset()


def routes() -> tuple[RouteSpec, ...]:
    """Every routable operation (the generated table, including the hand-added pseudo-operations)."""
    from rs3gw.protocol.routes_generated import ROUTES  # lazy: routes_generated imports RouteSpec from here

    return ROUTES


def _build_index() -> _Index:
    global _INDEX, _SUBRESOURCES
    from rs3gw.protocol.routes_generated import ROUTES, SUBRESOURCES

    grouped: dict[tuple[str, str], dict[frozenset[str], list[RouteSpec]]] = {}
    for spec in ROUTES:
        subs = frozenset(q for q, _ in spec.query if q in SUBRESOURCES)
        grouped.setdefault((spec.method, spec.scope), {}).setdefault(subs, []).append(spec)
    index: _Index = {}
    for k, by_subs in grouped.items():
        index[k] = {}
        for subs, specs in by_subs.items():
            specs.sort(key=lambda s: (-s.specificity, s.operation))
            index[k][subs] = tuple(
                (s.operation, s.query, s.headers, _HEADER_VALUE_PREFIX.get(s.operation)) for s in specs
            )
    _SUBRESOURCES = SUBRESOURCES
    _INDEX = index
    return index


def scope_of(bucket: str | None, key: str | None) -> str:
    """The route scope: service without a bucket, bucket without a (non-empty) key, else object."""
    if not bucket:
        return "service"
    if not key:
        return "bucket"
    return "object"


def route(
    method: str,
    bucket: str | None,
    key: str | None,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """The AWS operation name for a path-style request; raises MethodNotAllowed when none fits.

    ``headers`` must be keyed by lower-case names. The most specific matching spec wins; a
    request carrying a sub-resource key (``?acl``, ``?uploads``, ``uploadId`` ...) only matches
    specs that require that key, and other query keys (``prefix``, ``X-Amz-Signature`` ...) are
    ignored.
    """
    index = _INDEX if _INDEX is not None else _build_index()
    if not bucket:
        scope = "service"
    elif not key:
        scope = "bucket"
    else:
        scope = "object"
    by_subs = index.get((method, scope))
    if by_subs is None:
        raise MethodNotAllowed(Method=method, ResourceType=scope.upper())
    candidates = by_subs.get(frozenset(_SUBRESOURCES.intersection(query)) if query else _NONE, ())
    for op, qreq, hreq, value_check in candidates:
        for qk, qv in qreq:
            got = query.get(qk)
            if got is None or (qv is not None and got != qv):
                break
        else:
            for h in hreq:
                if h not in headers:
                    break
            else:
                if value_check is not None:
                    hv = headers.get(value_check[0])
                    if hv is None or not hv.lower().startswith(value_check[1]):
                        continue
                return op
    raise MethodNotAllowed(Method=method, ResourceType=scope.upper())

"""The S3 Select AST: frozen nodes the parser builds and the evaluator compiles. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class Path:
    """A column reference: ``s.a.b``, ``_3``, ``"Col"``, ``a[0]``; steps are Name or int."""

    steps: tuple[Name | int, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    arg: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class IsNull:
    arg: Expr
    negate: bool


@dataclass(frozen=True, slots=True)
class Like:
    arg: Expr
    pattern: Expr
    escape: Expr | None
    negate: bool


@dataclass(frozen=True, slots=True)
class Between:
    arg: Expr
    low: Expr
    high: Expr
    negate: bool


@dataclass(frozen=True, slots=True)
class In:
    arg: Expr
    items: tuple[Expr, ...]
    negate: bool


@dataclass(frozen=True, slots=True)
class Cast:
    arg: Expr
    type: str


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Agg:
    name: str
    arg: Expr | None  # None is COUNT(*)
    slot: int


@dataclass(frozen=True, slots=True)
class Case:
    """``CASE [operand] WHEN w THEN t ... [ELSE d] END``; without an operand each ``w`` is a condition."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None


Expr = Lit | Path | Unary | Binary | IsNull | Like | Between | In | Cast | Func | Agg | Case


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: Expr
    alias: str | None


@dataclass(frozen=True, slots=True)
class Query:
    items: tuple[SelectItem, ...] | None  # None is SELECT *
    from_path: tuple[Name | str, ...]  # "*" for [*]
    alias: str | None
    where: Expr | None
    limit: int | None
    aggregates: tuple[Agg, ...]


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, (Lit, Path)):
        return ()
    if isinstance(e, Agg):
        return (e.arg,) if e.arg is not None else ()
    if isinstance(e, (Unary, Cast, IsNull)):
        return (e.arg,)
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, Like):
        return (e.arg, e.pattern) + ((e.escape,) if e.escape is not None else ())
    if isinstance(e, Between):
        return (e.arg, e.low, e.high)
    if isinstance(e, In):
        return (e.arg, *e.items)
    if isinstance(e, Case):
        parts = [e.operand] + [x for pair in e.whens for x in pair] + [e.default]
        return tuple(p for p in parts if p is not None)
    return e.args

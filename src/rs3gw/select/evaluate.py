"""Compiles a parsed S3 Select query into Python closures and runs it over records.

Pure: records come in as tuples (CSV, Parquet) or JSON values; rows come out as (names, values).
SQL NULL is ``None``; a WHERE clause keeps a record only when it evaluates to TRUE.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rs3gw import errors
from rs3gw.select.dates import DATE_FUNCS
from rs3gw.select.nodes import (
    Agg,
    Between,
    Binary,
    Case,
    Cast,
    Expr,
    Func,
    In,
    IsNull,
    Like,
    Lit,
    Name,
    Path,
    Query,
    Unary,
)
from rs3gw.select.values import (
    CMP,
    FUNCS,
    MISSING,
    and3,
    arith,
    cast,
    compare,
    like_regex,
    num,
    or3,
    to_string,
    truth,
)

Fn = Callable[[Any], Any]
Row = tuple[Sequence[str], Sequence[Any]]
TICK: Any = object()  # a marker a reader may interleave with records


def _err(code: str, msg: str | None = None) -> errors.S3Error:
    return errors.error_class(code)(msg)


# -- bindings: how a column name or position reaches into a record ------------------------------
class Binding:
    """Records that are JSON values (dicts); subclasses handle positional records."""

    def column(self, step: Name, missing: Any = None) -> Fn:
        return lambda r: _member(r, step, missing)

    def position(self, n: int, missing: Any = None) -> Fn:
        return self.column(Name(f"_{n}", True), missing)

    def star(self, rec: Any) -> Row:
        if isinstance(rec, dict):
            return list(rec.keys()), list(rec.values())
        return ["_1"], [rec]


class TupleBinding(Binding):
    """Records that are sequences of fields; ``names`` is the CSV header or the Parquet schema."""

    def __init__(self, names: Sequence[str] | None) -> None:
        self.names = list(names) if names is not None else None
        self._lower: dict[str, int] = {}
        for i, n in enumerate(self.names or ()):
            self._lower.setdefault(n.lower(), i)

    def column(self, step: Name, missing: Any = None) -> Fn:
        idx: int | None = None
        if self.names is not None:
            if step.quoted:
                idx = self.names.index(step.name) if step.name in self.names else None
            else:
                idx = self._lower.get(step.name.lower())
        if idx is None:
            return lambda r: missing
        return self._at(idx, missing)

    def position(self, n: int, missing: Any = None) -> Fn:
        return self._at(n - 1, missing)

    @staticmethod
    def _at(i: int, missing: Any) -> Fn:
        return lambda r: r[i] if i < len(r) else missing

    def star(self, rec: Any) -> Row:
        names = self.names if self.names is not None else []
        if len(names) < len(rec):
            names = list(names) + [f"_{i + 1}" for i in range(len(names), len(rec))]
        return names[: len(rec)], rec


def _member(value: Any, step: Name | int, missing: Any = None) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else missing
    if not isinstance(value, dict):
        return missing
    if step.name in value or step.quoted:
        return value.get(step.name, missing)
    low = step.name.lower()
    for k, v in value.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return missing


def expand_from(value: Any, path: Sequence[Name | str]) -> Iterator[Any]:
    """Apply ``FROM S3Object[*].a[*]...`` to one top-level JSON value."""
    values = [value]
    for i, step in enumerate(path):
        if step == "*":
            if i == 0:
                continue  # S3Object[*]: each top-level value is already one record
            values = [x for v in values if isinstance(v, list) for x in v]
        else:
            assert isinstance(step, Name)
            values = [m for v in values if (m := _member(v, step)) is not None]
    yield from values


# -- compiling ----------------------------------------------------------------------------------
class Compiler:
    """Turns AST nodes into closures over one record; aggregates read their final values."""

    def __init__(self, binding: Binding, alias: str | None, finals: list[Any]) -> None:
        self.binding = binding
        self.alias = alias.lower() if alias else None
        self.finals = finals
        self.missing: Any = None

    def compile(self, e: Expr) -> Fn:
        method: Callable[[Any], Fn] = getattr(self, "_" + type(e).__name__.lower())
        return method(e)

    def _lit(self, e: Lit) -> Fn:
        v = e.value
        return lambda r: v

    def _path(self, e: Path) -> Fn:
        steps = list(e.steps)
        first = steps[0]
        assert isinstance(first, Name)
        if self.alias is not None and not first.quoted and first.name.lower() == self.alias:
            if len(steps) == 1:
                return lambda r: r
            steps.pop(0)
        elif first.name.lower() == "s3object" and not first.quoted and len(steps) > 1:
            steps.pop(0)
        head = steps[0]
        if isinstance(head, int):
            raise _err("ParseUnexpectedToken", "A path cannot start with an index")
        fn = self._head(head)
        for step in steps[1:]:
            fn = self._step(fn, step)
        return fn

    def _head(self, head: Name) -> Fn:
        m = re.fullmatch(r"_(\d+)", head.name)
        if m and not head.quoted:
            n = int(m.group(1))
            if n < 1:
                raise _err("InvalidColumnIndex", f"Column index {head.name} is invalid")
            return self.binding.position(n, self.missing)
        return self.binding.column(head, self.missing)

    def _step(self, fn: Fn, step: Name | int) -> Fn:
        missing = self.missing
        return lambda r: _member(fn(r), step, missing)

    def projection(self, e: Expr) -> Fn:
        """A SELECT-list item: a path to an absent attribute gives MISSING, which JSON output omits."""
        if not isinstance(e, Path):
            return self.compile(e)
        self.missing = MISSING
        try:
            return self.compile(e)
        finally:
            self.missing = None

    def _unary(self, e: Unary) -> Fn:
        f = self.compile(e.arg)
        if e.op == "NOT":
            return lambda r: None if (v := truth(f(r))) is None else not v
        if e.op == "+":
            return f
        return lambda r: arith("-", 0, v) if (v := f(r)) is not None else None

    def _binary(self, e: Binary) -> Fn:
        left, right = self.compile(e.left), self.compile(e.right)
        op = e.op
        if op == "AND":
            return lambda r: and3(truth(left(r)), lambda: truth(right(r)))
        if op == "OR":
            return lambda r: or3(truth(left(r)), lambda: truth(right(r)))
        if op in CMP:
            return lambda r: compare(op, left(r), right(r))
        return lambda r: arith(op, left(r), right(r))

    def _isnull(self, e: IsNull) -> Fn:
        f = self.compile(e.arg)
        neg = e.negate
        return lambda r: (f(r) is None) != neg

    def _like(self, e: Like) -> Fn:
        arg, pat = self.compile(e.arg), self.compile(e.pattern)
        esc = self.compile(e.escape) if e.escape is not None else (lambda r: None)
        neg = e.negate
        cache: dict[tuple[str, str | None], re.Pattern[str]] = {}

        def run(r: Any) -> bool | None:
            v, p = arg(r), pat(r)
            if v is None or p is None:
                return None
            key = (to_string(p), esc(r))
            rx = cache.get(key)
            if rx is None:
                rx = cache[key] = like_regex(*key)
            return (rx.fullmatch(to_string(v)) is not None) != neg

        return run

    def _between(self, e: Between) -> Fn:
        arg, lo, hi = self.compile(e.arg), self.compile(e.low), self.compile(e.high)
        neg = e.negate

        def run(r: Any) -> bool | None:
            v = arg(r)
            res = and3(compare(">=", v, lo(r)), lambda: compare("<=", v, hi(r)))
            return None if res is None else res != neg

        return run

    def _in(self, e: In) -> Fn:
        arg = self.compile(e.arg)
        items = [self.compile(i) for i in e.items]
        neg = e.negate

        def run(r: Any) -> bool | None:
            v = arg(r)
            saw_null = False
            for it in items:
                c = compare("=", v, it(r))
                if c:
                    return not neg
                saw_null = saw_null or c is None
            return None if saw_null else neg

        return run

    def _cast(self, e: Cast) -> Fn:
        f = self.compile(e.arg)
        typ = e.type
        return lambda r: cast(f(r), typ)

    def _func(self, e: Func) -> Fn:
        args = [self.compile(a) for a in e.args]
        impl = FUNCS.get(e.name) or DATE_FUNCS[e.name]
        return lambda r: impl(*[a(r) for a in args])

    def _case(self, e: Case) -> Fn:
        operand = self.compile(e.operand) if e.operand is not None else None
        whens = [(self.compile(w), self.compile(t)) for w, t in e.whens]
        default = self.compile(e.default) if e.default is not None else (lambda r: None)

        def run(r: Any) -> Any:
            subject = operand(r) if operand is not None else None
            for when, then in whens:
                hit = compare("=", subject, when(r)) if operand is not None else truth(when(r))
                if hit is True:
                    return then(r)
            return default(r)

        return run

    def _agg(self, e: Agg) -> Fn:
        finals, slot = self.finals, e.slot
        return lambda r: finals[slot]


# -- aggregates ---------------------------------------------------------------------------------
class Accumulator:
    def __init__(self, name: str, arg: Fn | None) -> None:
        self.name, self.arg = name, arg
        self.count = 0
        self.value: Any = None

    def add(self, rec: Any) -> None:
        if self.arg is None:
            self.count += 1
            return
        v = self.arg(rec)
        if v is None:
            return
        self.count += 1
        if self.name == "COUNT":
            return
        if self.name in ("SUM", "AVG"):
            n = num(v)
            if n is None:
                raise _err("InvalidDataType", f"{self.name} needs numbers, got {to_string(v)!r}")
            self.value = n if self.value is None else arith("+", self.value, n)
        elif self.value is None or compare("<" if self.name == "MIN" else ">", v, self.value):
            self.value = v

    def result(self) -> Any:
        if self.name == "COUNT":
            return self.count
        if self.name == "AVG":
            return None if not self.count else float(self.value) / self.count
        return self.value


# -- the program --------------------------------------------------------------------------------
class Program:
    """One query bound to one input's column names: filter, project, aggregate, limit."""

    def __init__(self, q: Query, binding: Binding) -> None:
        self.q = q
        self.binding = binding
        self.finals: list[Any] = [None] * len(q.aggregates)
        alias = q.alias
        if alias is None and not isinstance(binding, TupleBinding):
            alias = implicit_alias(q.from_path)
        c = Compiler(binding, alias, self.finals)
        self.where = c.compile(q.where) if q.where is not None else None
        self.accs = [Accumulator(a.name, c.compile(a.arg) if a.arg else None) for a in q.aggregates]
        self.items: list[tuple[str, Fn]] = []
        for i, item in enumerate(q.items or ()):
            self.items.append((item.alias or _default_name(item.expr, i + 1), c.projection(item.expr)))
        self.names = [n for n, _ in self.items]

    def matches(self, rec: Any) -> bool:
        return self.where is None or truth(self.where(rec)) is True

    def project(self, rec: Any) -> Row:
        if self.q.items is None:
            return self.binding.star(rec)
        return self.names, [f(rec) for _, f in self.items]

    def run(self, records: Iterable[Any]) -> Iterator[Row | None]:
        """Rows out, stopping early at LIMIT (so the reader stops reading too).

        A ``TICK`` among the records comes out as ``None``: the caller's chance to send a keep-alive.
        """
        limit = self.q.limit
        if limit == 0:
            return
        matches, emitted = self.matches, 0
        if self.accs:
            # As in SQL, LIMIT caps the rows out: an aggregate still sees every matching record.
            for rec in records:
                if rec is TICK:
                    yield None
                elif matches(rec):
                    for a in self.accs:
                        a.add(rec)
            yield self._aggregate_row()
            return
        for rec in records:
            if rec is TICK:
                yield None
            elif matches(rec):
                yield self.project(rec)
                emitted += 1
                if limit is not None and emitted >= limit:
                    return

    def _aggregate_row(self) -> Row:
        for i, a in enumerate(self.accs):
            self.finals[i] = a.result()
        return self.names, [f(None) for _, f in self.items]


def implicit_alias(path: Sequence[Name | str]) -> str | None:
    """The name a JSON row goes by when ``FROM S3Object[*].path`` has no alias (AWS's SELECT reference).

    A path ending in a name lets that name stand for the row (``SELECT price FROM
    S3Object[*].books[*].price``); one ending in a wildcard lets ``_1`` do so (``SELECT _1.price FROM
    S3Object[*].books[*]``). A bare ``S3Object[*]`` keeps ``_1`` an ordinary attribute name.
    """
    if len(path) < 2:
        return None
    last = path[-1]
    if last == "*":
        return "_1"
    return last.name if isinstance(last, Name) else None


def _default_name(e: Expr, position: int) -> str:
    if isinstance(e, Path):
        last = e.steps[-1]
        if isinstance(last, Name):
            return last.name
    return f"_{position}"

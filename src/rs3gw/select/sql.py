"""The S3 Select SQL subset: a lexer and a recursive-descent parser producing a small frozen AST.

Pure: no I/O. Errors are raised as the AWS S3 Select error codes (ParseUnexpectedToken, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from rs3gw import errors
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
    SelectItem,
    Unary,
    children,
)

KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AS",
        "AND",
        "OR",
        "NOT",
        "IS",
        "NULL",
        "LIKE",
        "ESCAPE",
        "BETWEEN",
        "IN",
        "CAST",
        "LIMIT",
        "TRUE",
        "FALSE",
        "MISSING",
        "GROUP",
        "ORDER",
        "BY",
        "HAVING",
        "JOIN",
        "UNION",
        "DISTINCT",
        "OFFSET",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
    ]
)
UNSUPPORTED_CLAUSES = frozenset({"GROUP", "ORDER", "HAVING", "JOIN", "UNION", "DISTINCT", "OFFSET"})
AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})
FUNCTIONS = frozenset(
    {"LOWER", "UPPER", "TRIM", "SUBSTRING", "CHAR_LENGTH", "CHARACTER_LENGTH", "COALESCE", "NULLIF"}
    | {"EXTRACT", "DATE_ADD", "DATE_DIFF", "TO_STRING", "TO_TIMESTAMP", "UTCNOW"}
)
# Argument counts; None is "one or more". EXTRACT and TRIM/SUBSTRING have their own syntax.
ARITY: dict[str, int | None] = {
    "COALESCE": None,
    "NULLIF": 2,
    "DATE_ADD": 3,
    "DATE_DIFF": 3,
    "TO_STRING": 2,
    "UTCNOW": 0,
}
DATE_PARTS = frozenset({"YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"})
EXTRACT_PARTS = DATE_PARTS | {"TIMEZONE_HOUR", "TIMEZONE_MINUTE"}
CAST_TYPES = {
    "INT": "INT",
    "INTEGER": "INT",
    "BIGINT": "INT",
    "FLOAT": "FLOAT",
    "DOUBLE": "FLOAT",
    "REAL": "FLOAT",
    "DECIMAL": "DECIMAL",
    "NUMERIC": "DECIMAL",
    "STRING": "STRING",
    "VARCHAR": "STRING",
    "CHAR": "STRING",
    "BOOL": "BOOL",
    "BOOLEAN": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
}

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    |(?P<str>'(?:[^']|'')*')
    |(?P<qid>"(?:[^"]|"")*")
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><>|!=|<=|>=|\|\||[=<>+\-*/%(),.\[\];])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, qid, id, kw, op, eof
    text: str
    pos: int


def tokenize(sql: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:
            if sql[pos] in "'\"":
                raise errors.error_class("LexerInvalidLiteral")(f"Unterminated literal at {pos}")
            raise errors.error_class("LexerInvalidChar")(f"Invalid character {sql[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        text = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "str":
            text = text[1:-1].replace("''", "'")
        elif kind == "qid":
            text = text[1:-1].replace('""', '"')
        elif kind == "id" and text.upper() in KEYWORDS:
            kind, text = "kw", text.upper()
        out.append(Token(kind, text, m.start()))
    out.append(Token("eof", "", len(sql)))
    return out


def _unexpected(tok: Token) -> errors.S3Error:
    what = tok.text or "end of expression"
    return errors.error_class("ParseUnexpectedToken")(f"Unexpected token {what!r} at position {tok.pos}")


class Parser:
    """One instance per query; ``parse()`` returns the Query or raises an S3 Select error."""

    def __init__(self, sql: str) -> None:
        self.toks = tokenize(sql)
        self.i = 0
        self.aggs: list[Agg] = []
        self.agg_allowed = False

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def _next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _is(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def _accept(self, kind: str, text: str | None = None) -> bool:
        if self._is(kind, text):
            self.i += 1
            return True
        return False

    def _expect(self, kind: str, text: str | None = None) -> Token:
        if not self._is(kind, text):
            raise _unexpected(self.tok)
        return self._next()

    def _word(self, word: str) -> bool:
        """A soft keyword such as LEADING or FOR, which stays usable as a column name elsewhere."""
        if self.tok.kind == "id" and self.tok.text.upper() == word:
            self.i += 1
            return True
        return False

    # -- statement
    def parse(self) -> Query:
        self._expect("kw", "SELECT")
        self._reject_unsupported()
        items = self._select_list()
        if not self._accept("kw", "FROM"):
            if self._is("eof"):
                raise errors.error_class("ParseSelectMissingFrom")()
            raise _unexpected(self.tok)
        from_path, alias = self._from()
        where = None
        if self._accept("kw", "WHERE"):
            where = self._expr()
        limit = None
        self._reject_unsupported()
        if self._accept("kw", "LIMIT"):
            t = self._expect("num")
            if not t.text.isdigit():
                raise _unexpected(t)
            limit = int(t.text)
        self._reject_unsupported()
        # PartiQL, which S3 Select's SQL is, ends a statement with one optional ';' (s3-tests send it).
        self._accept("op", ";")
        if not self._is("eof"):
            raise _unexpected(self.tok)
        return Query(items, from_path, alias, where, limit, tuple(self.aggs))

    def _reject_unsupported(self) -> None:
        t = self.tok
        if t.kind == "kw" and t.text in UNSUPPORTED_CLAUSES:
            raise errors.error_class("UnsupportedSyntax")(f"{t.text} is not supported by S3 Select")

    def _select_list(self) -> tuple[SelectItem, ...] | None:
        if self._accept("op", "*"):
            return None
        self.agg_allowed = True
        items = [self._select_item()]
        while self._accept("op", ","):
            if self._is("op", "*"):
                raise errors.error_class("ParseUnexpectedToken")(
                    "Other expressions are not allowed in the SELECT list when * is used"
                )
            items.append(self._select_item())
        self.agg_allowed = False
        return tuple(items)

    def _select_item(self) -> SelectItem:
        expr = self._expr()
        alias = None
        if self._accept("kw", "AS"):
            alias = self._ident()
        elif self.tok.kind in ("id", "qid"):
            alias = self._next().text
        return SelectItem(expr, alias)

    def _ident(self) -> str:
        if self.tok.kind in ("id", "qid"):
            return self._next().text
        raise _unexpected(self.tok)

    def _from(self) -> tuple[tuple[Name | str, ...], str | None]:
        t = self._expect("id")
        if t.text.upper() != "S3OBJECT":
            raise errors.error_class("UnsupportedSyntax")(f"FROM must name S3Object, not {t.text!r}")
        path: list[Name | str] = []
        while True:
            if self._accept("op", "["):
                self._expect("op", "*")
                self._expect("op", "]")
                path.append("*")
            elif self._accept("op", "."):
                t = self._next()
                if t.kind not in ("id", "qid"):
                    raise _unexpected(t)
                path.append(Name(t.text, t.kind == "qid"))
            else:
                break
        alias = None
        if self._accept("kw", "AS"):
            alias = self._ident()
        elif self.tok.kind in ("id", "qid"):
            alias = self._next().text
        if self._is("op", ","):
            raise errors.error_class("UnsupportedSyntax")("Joins are not supported by S3 Select")
        return tuple(path), alias

    # -- expressions, lowest precedence first
    def _expr(self) -> Expr:
        left = self._and()
        while self._accept("kw", "OR"):
            left = Binary("OR", left, self._and())
        return left

    def _and(self) -> Expr:
        left = self._not()
        while self._accept("kw", "AND"):
            left = Binary("AND", left, self._not())
        return left

    def _not(self) -> Expr:
        if self._accept("kw", "NOT"):
            return Unary("NOT", self._not())
        return self._predicate()

    def _predicate(self) -> Expr:
        """Comparisons, IS, LIKE, BETWEEN and IN share one left-associative level, as in PartiQL.

        So ``a = b = TRUE`` is ``(a = b) = TRUE`` and ``a LIKE 'x%' = TRUE`` compares the LIKE's result.
        """
        left = self._additive()
        while True:
            nxt = self._predicate_tail(left)
            if nxt is None:
                return left
            left = nxt

    def _predicate_tail(self, left: Expr) -> Expr | None:
        """One predicate operator applied to ``left``, or None when the next token starts none."""
        t = self.tok
        if t.kind == "op" and t.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.i += 1
            op = "<>" if t.text == "!=" else t.text
            return Binary(op, left, self._additive())
        if self._accept("kw", "IS"):
            negate = self._accept("kw", "NOT")
            if not (self._accept("kw", "NULL") or self._accept("kw", "MISSING")):
                raise _unexpected(self.tok)
            return IsNull(left, negate)
        negate = self._accept("kw", "NOT")
        if self._accept("kw", "LIKE"):
            pattern = self._additive()
            escape = self._additive() if self._accept("kw", "ESCAPE") else None
            return Like(left, pattern, escape, negate)
        if self._accept("kw", "BETWEEN"):
            low = self._additive()
            self._expect("kw", "AND")
            return Between(left, low, self._additive(), negate)
        if self._accept("kw", "IN"):
            self._expect("op", "(")
            items = [self._expr()]
            while self._accept("op", ","):
                items.append(self._expr())
            self._expect("op", ")")
            return In(left, tuple(items), negate)
        if negate:
            raise _unexpected(self.tok)
        return None

    def _additive(self) -> Expr:
        left = self._multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-", "||"):
            op = self._next().text
            left = Binary(op, left, self._multiplicative())
        return left

    def _multiplicative(self) -> Expr:
        left = self._unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            op = self._next().text
            left = Binary(op, left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            op = self._next().text
            arg = self._unary()
            if op == "-" and isinstance(arg, Lit) and isinstance(arg.value, (int, float, Decimal)):
                return Lit(-arg.value)
            return Unary(op, arg)
        return self._primary()

    def _primary(self) -> Expr:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Lit(_number(t.text))
        if t.kind == "str":
            self.i += 1
            return Lit(t.text)
        if t.kind == "kw":
            if t.text in ("TRUE", "FALSE"):
                self.i += 1
                return Lit(t.text == "TRUE")
            if t.text in ("NULL", "MISSING"):
                self.i += 1
                return Lit(None)
            if t.text == "CAST":
                self.i += 1
                return self._cast()
            if t.text == "CASE":
                self.i += 1
                return self._case()
            raise _unexpected(t)
        if self._accept("op", "("):
            e = self._expr()
            self._expect("op", ")")
            return e
        if t.kind == "id" and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].text == "(":
            return self._call()
        if t.kind in ("id", "qid"):
            return self._path()
        if t.kind == "eof":
            raise errors.error_class("ParseExpectedExpression")()
        raise _unexpected(t)

    def _path(self) -> Path:
        t = self._next()
        steps: list[Name | int] = [Name(t.text, t.kind == "qid")]
        while True:
            if self._accept("op", "."):
                n = self._next()
                if n.kind not in ("id", "qid"):
                    raise _unexpected(n)
                steps.append(Name(n.text, n.kind == "qid"))
            elif self._accept("op", "["):
                n = self._next()
                if n.kind == "num" and n.text.isdigit():
                    steps.append(int(n.text))
                elif n.kind == "str":
                    steps.append(Name(n.text, True))
                else:
                    raise _unexpected(n)
                self._expect("op", "]")
            else:
                for s in steps:
                    if isinstance(s, Name) and not s.quoted and re.fullmatch(r"_0+", s.name):
                        raise errors.error_class("InvalidColumnIndex")(f"Column index {s.name} is invalid")
                return Path(tuple(steps))

    def _cast(self) -> Cast:
        self._expect("op", "(")
        arg = self._expr()
        self._expect("kw", "AS")
        t = self._next()
        typ = CAST_TYPES.get(t.text.upper()) if t.kind == "id" else None
        if typ is None:
            raise errors.error_class("InvalidDataType")(f"Unsupported CAST type {t.text!r}")
        if self._accept("op", "("):  # DECIMAL(10, 2), VARCHAR(20): precision is accepted, not enforced
            while not self._accept("op", ")"):
                if self._is("eof"):
                    raise _unexpected(self.tok)
                self.i += 1
        self._expect("op", ")")
        return Cast(arg, typ)

    def _call(self) -> Expr:
        name = self._next().text.upper()
        self._expect("op", "(")
        if name in AGGREGATES:
            return self._aggregate(name)
        if name not in FUNCTIONS:
            raise errors.error_class("UnsupportedFunction")(f"Function {name} is not supported")
        if name == "SUBSTRING":
            return self._substring()
        if name == "TRIM":
            return self._trim()
        if name == "EXTRACT":
            part = self._date_part(EXTRACT_PARTS)
            self._expect("kw", "FROM")
            arg = self._expr()
            self._expect("op", ")")
            return Func("EXTRACT", (part, arg))
        args: list[Expr] = []
        if name in ("DATE_ADD", "DATE_DIFF"):
            args.append(self._date_part(DATE_PARTS))
            self._expect("op", ",")
        if not self._accept("op", ")"):
            args.append(self._expr())
            while self._accept("op", ","):
                args.append(self._expr())
            self._expect("op", ")")
        want = ARITY.get(name, 1)
        if (want is not None and len(args) != want) or (want is None and not args):
            raise errors.error_class("EvaluatorInvalidArguments")(f"Wrong number of arguments to {name}")
        return Func("CHAR_LENGTH" if name == "CHARACTER_LENGTH" else name, tuple(args))

    def _date_part(self, allowed: frozenset[str]) -> Lit:
        """A date part is a bare word (``year``), not a string or a column."""
        t = self._next()
        if t.kind != "id" or t.text.upper() not in allowed:
            raise errors.error_class("EvaluatorInvalidArguments")(f"Invalid date part {t.text!r}")
        return Lit(t.text.upper())

    def _case(self) -> Case:
        operand = None if self._is("kw", "WHEN") else self._expr()
        whens: list[tuple[Expr, Expr]] = []
        while self._accept("kw", "WHEN"):
            cond = self._expr()
            self._expect("kw", "THEN")
            whens.append((cond, self._expr()))
        if not whens:
            raise _unexpected(self.tok)
        default = self._expr() if self._accept("kw", "ELSE") else None
        self._expect("kw", "END")
        return Case(operand, tuple(whens), default)

    def _aggregate(self, name: str) -> Agg:
        if not self.agg_allowed:
            raise errors.error_class("UnsupportedSqlOperation")(
                f"Aggregate {name} is only allowed in the SELECT list"
            )
        arg: Expr | None
        if name == "COUNT" and self._accept("op", "*"):
            arg = None
        else:
            self.agg_allowed = False  # no aggregate inside an aggregate
            arg = self._expr()
            self.agg_allowed = True
        self._expect("op", ")")
        agg = Agg(name, arg, len(self.aggs))
        self.aggs.append(agg)
        return agg

    def _substring(self) -> Func:
        args = [self._expr()]
        if self._accept("kw", "FROM") or self._accept("op", ","):
            args.append(self._expr())
            if self._word("FOR") or self._accept("op", ","):
                args.append(self._expr())
        self._expect("op", ")")
        if len(args) < 2:
            raise errors.error_class("EvaluatorInvalidArguments")("SUBSTRING needs a start position")
        return Func("SUBSTRING", tuple(args))

    def _trim(self) -> Func:
        where = "BOTH"
        for word in ("LEADING", "TRAILING", "BOTH"):
            if self._word(word):
                where = word
                break
        chars: Expr | None = None
        if not self._accept("kw", "FROM"):
            first = self._expr()
            if self._accept("kw", "FROM"):
                chars = first
                arg = self._expr()
            else:
                arg = first
        else:
            arg = self._expr()
        self._expect("op", ")")
        return Func("TRIM", (Lit(where), arg, chars if chars is not None else Lit(None)))


def _number(text: str) -> int | float | Decimal:
    if text.isdigit():
        return int(text)
    if "e" in text.lower():
        return float(text)
    return Decimal(text)


def parse(sql: str) -> Query:
    """Parse one S3 Select statement; only SELECT ... FROM S3Object ... is accepted."""
    if not sql.strip():
        raise errors.error_class("MissingRequiredParameter")("The Expression is empty")
    q = Parser(sql).parse()
    if q.items is not None and q.aggregates:
        for item in q.items:
            if _has_bare_column(item.expr):
                raise errors.error_class("UnsupportedSqlOperation")(
                    "Aggregate and non-aggregate expressions cannot be mixed in the SELECT list"
                )
    return q


def _has_bare_column(e: Expr) -> bool:
    """A column reference outside any aggregate (which would need GROUP BY)."""
    if isinstance(e, Path):
        return True
    if isinstance(e, (Lit, Agg)):
        return False
    return any(_has_bare_column(c) for c in children(e))

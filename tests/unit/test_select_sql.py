"""S3 Select SQL: the parser's AST and AWS error codes, and the evaluator over in-memory records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.select.evaluate import TICK, Binding, Program, TupleBinding
from rs3gw.select.nodes import Agg, Binary, Lit, Name, Path
from rs3gw.select.sql import parse
from rs3gw.select.values import MISSING

HEADER = ["name", "age", "city", "score"]
ROWS = [
    ["alice", "30", "Paris", "1.5"],
    ["bob", "25", "Berlin", ""],
    ["Carol", "41", "paris", "3"],
    ["dave", "17", "Rome", "2.25"],
]


def run_csv(sql: str, rows: list[list[str]] = ROWS, header: list[str] | None = HEADER) -> list[list[Any]]:
    prog = Program(parse(sql), TupleBinding(header))
    return [list(r[1]) for r in prog.run(iter(rows)) if r is not None]


def run_json(sql: str, docs: list[Any]) -> list[dict[str, Any]]:
    prog = Program(parse(sql), Binding())
    return [dict(zip(*r, strict=True)) for r in prog.run(iter(docs)) if r is not None]


def code_of(sql: str) -> str:
    with pytest.raises(errors.S3Error) as ei:
        Program(parse(sql), TupleBinding(HEADER))
    return ei.value.code


def test_parse_shapes() -> None:
    q = parse("SELECT s.name AS n, _2 FROM S3Object s WHERE s.age > 20 LIMIT 5")
    assert q.alias == "s" and q.limit == 5
    assert q.items is not None and q.items[0].alias == "n"
    assert q.items[1].expr == Path((Name("_2", False),))
    assert q.where == Binary(">", Path((Name("s", False), Name("age", False))), Lit(20))
    star = parse("select * from s3object")
    assert star.items is None and star.alias is None
    agg = parse("SELECT COUNT(*), SUM(x) FROM S3Object")
    assert agg.aggregates == (Agg("COUNT", None, 0), Agg("SUM", Path((Name("x", False),)), 1))


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT FROM S3Object", "ParseUnexpectedToken"),
        ("SELECT * FROM S3Object WHERE", "ParseExpectedExpression"),
        ("SELECT * FROM S3Object WHERE a = = 1", "ParseUnexpectedToken"),
        ("SELECT *", "ParseSelectMissingFrom"),
        ("SELECT a FROM S3Object ORDER BY a", "UnsupportedSyntax"),
        ("SELECT a FROM S3Object GROUP BY a", "UnsupportedSyntax"),
        ("SELECT a FROM other", "UnsupportedSyntax"),
        ("SELECT _0 FROM S3Object", "InvalidColumnIndex"),
        ("SELECT a FROM S3Object WHERE a = 'x", "LexerInvalidLiteral"),
        ("SELECT a FROM S3Object WHERE a = #", "LexerInvalidChar"),
        ("SELECT CAST(a AS BLOB) FROM S3Object", "InvalidDataType"),
        ("SELECT FOO(a) FROM S3Object", "UnsupportedFunction"),
        ("SELECT a, COUNT(*) FROM S3Object", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object WHERE COUNT(*) > 1", "UnsupportedSqlOperation"),
        ("SELECT NULLIF(a) FROM S3Object", "EvaluatorInvalidArguments"),
        ("SELECT a FROM S3Object LIMIT x", "ParseUnexpectedToken"),
        ("   ", "MissingRequiredParameter"),
        ("SELECT *, a FROM S3Object", "ParseUnexpectedToken"),
    ],
)
def test_rejected_with_aws_codes(sql: str, code: str) -> None:
    assert code_of(sql) == code


def test_projection_positional_and_aliases() -> None:
    assert run_csv("SELECT s.name, _2 FROM S3Object s WHERE s.city = 'Paris'") == [["alice", "30"]]
    assert run_csv("SELECT _1 FROM S3Object LIMIT 2", header=None) == [["alice"], ["bob"]]
    assert run_csv('SELECT "name" FROM S3Object WHERE "NAME" IS NULL') == [
        ["alice"],
        ["bob"],
        ["Carol"],
        ["dave"],
    ]
    assert run_csv("SELECT * FROM S3Object WHERE _3 = 'Rome'") == [ROWS[3]]
    assert run_csv("SELECT _9 FROM S3Object LIMIT 1") == [[MISSING]]  # beyond the row: absent, not NULL
    assert run_csv("SELECT _9 IS NULL FROM S3Object LIMIT 1") == [[True]]


def test_comparisons_and_logic() -> None:
    assert run_csv("SELECT name FROM S3Object WHERE age >= 25 AND NOT city = 'Rome'") == [
        ["alice"],
        ["bob"],
        ["Carol"],
    ]
    assert run_csv("SELECT name FROM S3Object WHERE age < 20 OR name <> name") == [["dave"]]
    assert run_csv("SELECT name FROM S3Object WHERE age != 30 AND age BETWEEN 20 AND 41") == [
        ["bob"],
        ["Carol"],
    ]
    assert run_csv("SELECT name FROM S3Object WHERE age NOT BETWEEN 20 AND 40") == [["Carol"], ["dave"]]
    assert run_csv("SELECT name FROM S3Object WHERE city IN ('Rome', 'Berlin')") == [["bob"], ["dave"]]
    assert run_csv("SELECT name FROM S3Object WHERE city NOT IN ('Rome', 'Berlin')") == [["alice"], ["Carol"]]
    assert run_csv("SELECT name FROM S3Object WHERE LOWER(city) LIKE 'p%s'") == [["alice"], ["Carol"]]
    assert run_csv("SELECT name FROM S3Object WHERE name LIKE '_ob' OR name NOT LIKE '%a%'") == [["bob"]]
    assert run_csv("SELECT name FROM S3Object WHERE name LIKE 'a!%' ESCAPE '!'") == []
    assert run_csv("SELECT name FROM S3Object WHERE NULLIF(score, '') IS NULL") == [["bob"]]
    assert run_csv("SELECT name FROM S3Object WHERE NULLIF(score, '') IS NOT NULL LIMIT 1") == [["alice"]]


def test_arithmetic_cast_and_functions() -> None:
    got = run_csv(
        "SELECT CAST(age AS INT) * 2 + 1, CAST(score AS FLOAT), UPPER(name), CHAR_LENGTH(city),"
        " SUBSTRING(name, 2, 3), SUBSTRING(name FROM 3), TRIM('  x  '), TRIM(LEADING 'a' FROM name)"
        " FROM S3Object LIMIT 1"
    )
    assert got == [[61, 1.5, "ALICE", 5, "lic", "ice", "x", "lice"]]
    assert run_csv("SELECT 7 / 2, -7 / 2, 7 % 3, 1.5 + 1, name || '!' FROM S3Object LIMIT 1") == [
        [3, -3, 1, Decimal("2.5"), "alice!"]
    ]
    assert run_csv(
        "SELECT COALESCE(NULL, score, 'z'), CAST('true' AS BOOL), CAST(3 AS STRING) FROM S3Object LIMIT 1"
    ) == [["1.5", True, "3"]]
    assert (
        run_csv("SELECT CAST('2024-01-02T03:04:05Z' AS TIMESTAMP) FROM S3Object LIMIT 1")[0][0].year == 2024
    )


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT CAST(name AS INT) FROM S3Object", "CastFailed"),
        ("SELECT age / 0 FROM S3Object", "DivisionByZero"),
        ("SELECT SUM(name) FROM S3Object", "InvalidDataType"),
        ("SELECT name + 1 FROM S3Object", "InvalidDataType"),
        ("SELECT UPPER(5) FROM S3Object", "IncorrectSqlFunctionArgumentType"),
    ],
)
def test_evaluation_errors(sql: str, code: str) -> None:
    with pytest.raises(errors.S3Error) as ei:
        run_csv(sql)
    assert ei.value.code == code


def test_aggregates() -> None:
    assert run_csv(
        "SELECT COUNT(*), COUNT(NULLIF(score, '')), SUM(CAST(age AS INT)), MIN(age), MAX(name), AVG(age) FROM S3Object"
    ) == [[4, 3, 113, "17", "dave", 28.25]]
    assert run_csv("SELECT COUNT(*) AS n FROM S3Object WHERE age > 100") == [[0]]
    assert run_csv("SELECT SUM(age) FROM S3Object WHERE age > 100") == [[None]]
    assert run_csv("SELECT COUNT(*) + 1 FROM S3Object LIMIT 2") == [[5]]  # LIMIT caps rows out, not in
    assert run_csv("SELECT COUNT(*) FROM S3Object LIMIT 0") == []


def test_json_paths_and_from_path() -> None:
    docs = [{"id": 1, "user": {"name": "a", "tags": ["x", "y"]}}, {"id": 2, "user": {"name": "b"}}, {"id": 3}]
    assert run_json("SELECT s.id, s.user.name FROM S3Object[*] s WHERE s.user.tags[1] = 'y'", docs) == [
        {"id": 1, "name": "a"}
    ]
    assert run_json("SELECT * FROM S3Object s WHERE s.user IS NULL", docs) == [{"id": 3}]
    assert run_json("SELECT COUNT(s.user) AS c FROM S3Object s", docs) == [{"c": 2}]
    assert run_json("SELECT s.ID FROM S3Object s LIMIT 1", docs) == [{"ID": 1}]


def test_ticks_pass_through_and_limit_stops_reading() -> None:
    prog = Program(parse("SELECT _1 FROM S3Object WHERE _1 = 'x' LIMIT 1"), TupleBinding(None))
    consumed: list[int] = []

    def records() -> Any:
        for i in range(100):
            consumed.append(i)
            yield TICK
            yield ["x"]

    out = list(prog.run(records()))
    assert out[0] is None and out[1] == (["_1"], ["x"]) and len(out) == 2
    assert consumed == [0]

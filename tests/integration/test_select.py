"""SelectObjectContent over HTTP with boto3 (and once with the AWS CLI): CSV, JSON, Parquet inputs,
CSV and JSON outputs, AWS error codes, ScanRange, and Parquet read straight through pyarrow's S3FileSystem."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, EventStreamError

from conftest import ACCESS_KEY, SECRET_KEY, Server

CSV_IN = {"CSV": {"FileHeaderInfo": "USE", "AllowQuotedRecordDelimiter": True}}
CSV_OUT: dict[str, Any] = {"CSV": {}}
JSON_OUT: dict[str, Any] = {"JSON": {}}

PEOPLE = (
    b"name,age,city,note\n"
    b'alice,30,"Paris, FR","said ""hi"""\n'
    b"bob,25,Berlin,\n"
    b'carol,41,Rome,"two\nlines"\n'
    b"dave,17,Oslo,x\n"
)


def select(
    s3: Any,
    bucket: str,
    key: str,
    sql: str,
    inp: dict[str, Any],
    out: dict[str, Any] | None = None,
    **kw: Any,
) -> tuple[bytes, list[dict[str, Any]]]:
    resp = s3.select_object_content(
        Bucket=bucket,
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=inp,
        OutputSerialization=out or CSV_OUT,
        **kw,
    )
    records = b""
    events = []
    for ev in resp["Payload"]:
        events.append(ev)
        if "Records" in ev:
            records += ev["Records"]["Payload"]
    return records, events


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def jrows(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def error_code(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.response["Error"]["Code"])


# -- CSV ------------------------------------------------------------------------------------------
def test_csv_header_quoting_and_events(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    data, events = select(
        s3, bucket, "people.csv", "SELECT * FROM S3Object s WHERE CAST(s.age AS INT) > 26", CSV_IN
    )
    assert rows(data) == [["alice", "30", "Paris, FR", 'said "hi"'], ["carol", "41", "Rome", "two\nlines"]]
    assert [next(iter(e)) for e in events] == ["Records", "Stats", "End"]
    stats = events[1]["Stats"]["Details"]
    assert stats == {"BytesScanned": len(PEOPLE), "BytesProcessed": len(PEOPLE), "BytesReturned": len(data)}


def test_csv_projection_json_output_and_progress(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p.csv", Body=PEOPLE)
    sql = (
        "SELECT s.name, UPPER(s.city) AS town, CAST(s.age AS INT) + 1 FROM S3Object s WHERE s.name LIKE '%o%'"
    )
    data, events = select(s3, bucket, "p.csv", sql, CSV_IN, JSON_OUT, RequestProgress={"Enabled": True})
    assert jrows(data) == [
        {"name": "bob", "town": "BERLIN", "_3": 26},
        {"name": "carol", "town": "ROME", "_3": 42},
    ]
    kinds = [next(iter(e)) for e in events]
    assert "Progress" in kinds and kinds[-2:] == ["Stats", "End"]


def test_csv_positional_no_header_and_ignore(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p.csv", Body=PEOPLE)
    data, _ = select(
        s3, bucket, "p.csv", "SELECT _1, _2 FROM S3Object LIMIT 2", {"CSV": {"FileHeaderInfo": "NONE"}}
    )
    assert rows(data) == [["name", "age"], ["alice", "30"]]
    data, _ = select(
        s3,
        bucket,
        "p.csv",
        "SELECT _1 FROM S3Object",
        {"CSV": {"FileHeaderInfo": "IGNORE", "AllowQuotedRecordDelimiter": True}},
    )
    assert rows(data) == [["alice"], ["bob"], ["carol"], ["dave"]]


@pytest.mark.parametrize("compression", ["GZIP", "BZIP2"])
def test_csv_compressed(s3: Any, bucket: str, compression: str) -> None:
    body = b"id,v\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20_000))
    packed = gzip.compress(body) if compression == "GZIP" else bz2.compress(body)
    s3.put_object(Bucket=bucket, Key="c.csv", Body=packed)
    sql = "SELECT COUNT(*), SUM(CAST(v AS INT)) FROM S3Object WHERE CAST(id AS INT) % 2 = 0"
    data, events = select(s3, bucket, "c.csv", sql, {**CSV_IN, "CompressionType": compression})
    assert rows(data) == [["10000", str(sum(i * i for i in range(0, 20_000, 2)))]]
    stats = next(e for e in events if "Stats" in e)["Stats"]["Details"]
    assert stats["BytesScanned"] == len(packed) and stats["BytesProcessed"] == len(body)


def test_csv_dialect_options(s3: Any, bucket: str) -> None:
    body = b"#comment;line\na;'x|y';1|b;'it\\'s';2|#skip|c;plain;3"
    s3.put_object(Bucket=bucket, Key="d.csv", Body=body)
    inp = {
        "CSV": {
            "FileHeaderInfo": "NONE",
            "FieldDelimiter": ";",
            "RecordDelimiter": "|",
            "QuoteCharacter": "'",
            "QuoteEscapeCharacter": "\\",
            "Comments": "#",
        }
    }
    # (not "\r\n": botocore sends it raw in XML, whose parsers normalize it to "\n")
    out = {"CSV": {"FieldDelimiter": "\t", "RecordDelimiter": "|", "QuoteFields": "ALWAYS"}}
    data, _ = select(s3, bucket, "d.csv", "SELECT _1, _2 FROM S3Object WHERE _3 > 1", inp, out)
    assert data == b'"b"\t"it\'s"|"c"\t"plain"|'


def test_csv_scan_range(s3: Any, bucket: str) -> None:
    lines = [b"%04d,row\n" % i for i in range(100)]  # 9 bytes each
    s3.put_object(Bucket=bucket, Key="r.csv", Body=b"".join(lines))
    inp = {"CSV": {"FileHeaderInfo": "NONE"}}
    got: list[str] = []
    for start in range(0, 900, 100):  # contiguous ranges see every record exactly once
        data, _ = select(
            s3, bucket, "r.csv", "SELECT _1 FROM S3Object", inp, ScanRange={"Start": start, "End": start + 99}
        )
        got += [r[0] for r in rows(data)]
    assert got == [f"{i:04d}" for i in range(100)]
    # AWS processes the records that start inside the range, read to their end.
    data, _ = select(s3, bucket, "r.csv", "SELECT _1 FROM S3Object", inp, ScanRange={"Start": 9, "End": 10})
    assert rows(data) == [["0001"]]
    data, _ = select(s3, bucket, "r.csv", "SELECT _1 FROM S3Object", inp, ScanRange={"Start": 10, "End": 17})
    assert rows(data) == []
    data, _ = select(s3, bucket, "r.csv", "SELECT _1 FROM S3Object", inp, ScanRange={"End": 18})
    assert rows(data) == [["0098"], ["0099"]]


# -- JSON -----------------------------------------------------------------------------------------
def test_json_lines(s3: Any, bucket: str) -> None:
    docs = [
        {"id": i, "user": {"name": f"u{i}", "age": 20 + i % 30}, "tags": ["a", "b"][: i % 3]}
        for i in range(500)
    ]
    s3.put_object(Bucket=bucket, Key="l.json", Body="\n".join(json.dumps(d) for d in docs).encode())
    sql = "SELECT s.id, s.user.name AS n FROM S3Object s WHERE s.user.age BETWEEN 25 AND 26 AND s.tags[1] = 'b' LIMIT 3"
    data, _ = select(s3, bucket, "l.json", sql, {"JSON": {"Type": "LINES"}}, JSON_OUT)
    want = [
        {"id": d["id"], "n": d["user"]["name"]}
        for d in docs
        if 25 <= d["user"]["age"] <= 26 and len(d["tags"]) > 1
    ]
    assert jrows(data) == want[:3]
    data, _ = select(
        s3, bucket, "l.json", "SELECT COUNT(*), MAX(s.user.age) FROM S3Object s", {"JSON": {"Type": "LINES"}}
    )
    assert rows(data) == [["500", "49"]]
    # An absent attribute is MISSING: JSON output leaves it out, CSV output leaves the field empty.
    sql = "SELECT s.id, s.nope, s.user.nope AS deep FROM S3Object s LIMIT 1"
    data, _ = select(s3, bucket, "l.json", sql, {"JSON": {"Type": "LINES"}}, JSON_OUT)
    assert jrows(data) == [{"id": 0}]
    data, _ = select(s3, bucket, "l.json", sql, {"JSON": {"Type": "LINES"}})
    assert data == b"0,,\n"
    body = b"".join(b'{"i": %d}\n' % i for i in range(10))  # 9 bytes a line
    s3.put_object(Bucket=bucket, Key="r.json", Body=body)
    data, _ = select(
        s3,
        bucket,
        "r.json",
        "SELECT s.i FROM S3Object s",
        {"JSON": {"Type": "LINES"}},
        ScanRange={"Start": 9, "End": 27},
    )
    assert rows(data) == [["1"], ["2"], ["3"]]


def test_json_document(s3: Any, bucket: str) -> None:
    body = b'{"items": [{"k": 1, "v": "x"}, {"k": 2, "v": null}]}\n  {"items": [{"k": 3, "v": "z"}]}'
    s3.put_object(Bucket=bucket, Key="d.json", Body=body)
    data, _ = select(
        s3,
        bucket,
        "d.json",
        "SELECT * FROM S3Object[*].items[*] s WHERE s.v IS NOT NULL",
        {"JSON": {"Type": "DOCUMENT"}},
        JSON_OUT,
    )
    assert jrows(data) == [{"k": 1, "v": "x"}, {"k": 3, "v": "z"}]
    gz = gzip.compress(body)
    s3.put_object(Bucket=bucket, Key="d.json.gz", Body=gz)
    data, _ = select(
        s3,
        bucket,
        "d.json.gz",
        "SELECT COUNT(*) FROM S3Object",
        {"JSON": {"Type": "DOCUMENT"}, "CompressionType": "GZIP"},
    )
    assert data == b"2\n"


# -- Parquet ----------------------------------------------------------------------------------------
def make_table(n: int) -> pa.Table:
    import random

    rng = random.Random(7)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "value": pa.array([rng.random() * 100 for _ in range(n)], pa.float64()),
            "cat": pa.array([rng.choice("abcde") for _ in range(n)], pa.string()),
            "flag": pa.array([i % 3 == 0 for i in range(n)], pa.bool_()),
        }
    )


def put_parquet(s3: Any, bucket: str, key: str, table: pa.Table, row_group: int) -> int:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group)
    size = buf.tell()
    buf.seek(0)
    s3.upload_fileobj(buf, bucket, key)
    return size


def check_parquet(s3: Any, bucket: str, n: int) -> None:
    table = make_table(n)
    size = put_parquet(s3, bucket, "t.parquet", table, n // 10)
    inp = {"Parquet": {}}
    lo = n // 3
    # Aggregates with a filter, against pyarrow.compute on the same table.
    sql = f"SELECT COUNT(*), SUM(s.value), MIN(s.id), MAX(s.id), AVG(s.value) FROM S3Object s WHERE s.cat = 'b' AND s.id >= {lo}"
    data, _ = select(s3, bucket, "t.parquet", sql, inp)
    mask = pc.and_(pc.equal(table["cat"], "b"), pc.greater_equal(table["id"], lo))
    f = table.filter(mask)
    (got,) = rows(data)
    assert int(got[0]) == f.num_rows
    assert float(got[1]) == pytest.approx(pc.sum(f["value"]).as_py())
    assert [int(got[2]), int(got[3])] == [pc.min(f["id"]).as_py(), pc.max(f["id"]).as_py()]
    assert float(got[4]) == pytest.approx(pc.mean(f["value"]).as_py())
    # Projection and filter, JSON out.
    sql = "SELECT s.id, s.value FROM S3Object s WHERE s.value > 99.5 AND s.flag = TRUE"
    data, _ = select(s3, bucket, "t.parquet", sql, inp, JSON_OUT)
    f = table.filter(pc.and_(pc.greater(table["value"], 99.5), table["flag"]))
    assert jrows(data) == f.select(["id", "value"]).to_pylist()
    # Row-group filtering and column pruning: a narrow id range reads a small part of the file.
    data, events = select(s3, bucket, "t.parquet", "SELECT s.cat FROM S3Object s WHERE s.id < 5", inp)
    assert rows(data) == [[c] for c in table["cat"][:5].to_pylist()]
    stats = next(e for e in events if "Stats" in e)["Stats"]["Details"]
    assert stats["BytesScanned"] < size / 10
    data, _ = select(s3, bucket, "t.parquet", "SELECT * FROM S3Object LIMIT 2", inp, JSON_OUT)
    assert jrows(data) == table.slice(0, 2).to_pylist()


def test_parquet_1m(s3: Any, bucket: str) -> None:
    """The issue's proof: a million rows (about 8 s here, so it stays in CI)."""
    check_parquet(s3, bucket, 1_000_000)


def test_pyarrow_s3filesystem_reads_parquet(server: Server, s3: Any, bucket: str) -> None:
    from pyarrow import fs

    table = make_table(5000)
    for part in range(2):
        put_parquet(s3, bucket, f"ds/part-{part}.parquet", table.slice(part * 2500, 2500), 1000)
    host = server.endpoint.split("://", 1)[1]
    s3fs = fs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=host,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=False,
    )
    got = pq.read_table(f"{bucket}/ds", filesystem=s3fs).sort_by("id")
    assert got.select(table.column_names).equals(table)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "inp", "code"),
    [
        ("SELECT * FROM S3Object WHERE", CSV_IN, "ParseExpectedExpression"),
        ("SELECT * FROM S3Object WHERE a = = 1", CSV_IN, "ParseUnexpectedToken"),
        ("SELECT _0 FROM S3Object", CSV_IN, "InvalidColumnIndex"),
        ("SELECT a FROM S3Object ORDER BY a", CSV_IN, "UnsupportedSyntax"),
        ("", CSV_IN, "MissingRequiredParameter"),
        ("SELECT * FROM S3Object", {"CSV": {"FileHeaderInfo": "MAYBE"}}, "InvalidFileHeaderInfo"),
        ("SELECT * FROM S3Object", {"CSV": {}, "CompressionType": "ZIP"}, "InvalidCompressionFormat"),
        ("SELECT * FROM S3Object", {"JSON": {"Type": "TREE"}}, "InvalidJsonType"),
        ("SELECT * FROM S3Object", {"CSV": {}, "JSON": {}}, "ObjectSerializationConflict"),
    ],
)
def test_request_errors(s3: Any, bucket: str, sql: str, inp: dict[str, Any], code: str) -> None:
    s3.put_object(Bucket=bucket, Key="e.csv", Body=PEOPLE)
    with pytest.raises(ClientError) as ei:
        select(s3, bucket, "e.csv", sql, inp)
    assert error_code(ei) == code
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_other_request_errors(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="e.csv", Body=PEOPLE)
    with pytest.raises(ClientError) as ei:
        s3.select_object_content(
            Bucket=bucket,
            Key="e.csv",
            Expression="SELECT 1 FROM S3Object",
            ExpressionType="XQUERY",
            InputSerialization=CSV_IN,
            OutputSerialization=CSV_OUT,
        )
    assert error_code(ei) == "InvalidExpressionType"
    with pytest.raises(ClientError) as ei:
        select(s3, bucket, "missing.csv", "SELECT * FROM S3Object", CSV_IN)
    assert error_code(ei) == "NoSuchKey"
    with pytest.raises(ClientError) as ei:
        select(
            s3,
            bucket,
            "e.csv",
            "SELECT * FROM S3Object",
            {"CSV": {}, "CompressionType": "GZIP"},
            ScanRange={"Start": 0},
        )
    assert error_code(ei) == "UnsupportedScanRangeInput"


@pytest.mark.parametrize(
    ("key", "body", "sql", "inp", "code"),
    [
        ("e.csv", PEOPLE, "SELECT CAST(s.name AS INT) FROM S3Object s", CSV_IN, "CastFailed"),
        (
            "e.json",
            b'{"a": 1}\n{"a": ',
            "SELECT * FROM S3Object",
            {"JSON": {"Type": "LINES"}},
            "JSONParsingError",
        ),
        (
            "e.gz",
            b"not gzip at all",
            "SELECT * FROM S3Object",
            {"CSV": {}, "CompressionType": "GZIP"},
            "InvalidCompressionFormat",
        ),
        ("e.parquet", b"PAR1 nope", "SELECT * FROM S3Object", {"Parquet": {}}, "ParquetParsingError"),
        ("e.txt", b"a," * 600_000, "SELECT * FROM S3Object", {"CSV": {}}, "OverMaxRecordSize"),
    ],
)
def test_errors_mid_stream_are_error_events(
    s3: Any, bucket: str, key: str, body: bytes, sql: str, inp: dict[str, Any], code: str
) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    with pytest.raises(EventStreamError) as ei:
        select(s3, bucket, key, sql, inp)
    assert error_code(ei) == code


# -- AWS CLI -------------------------------------------------------------------------------------------
def test_aws_cli_select(server: Server, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="cli.csv", Body=PEOPLE)
    (tmp_path / "cfg").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "cfg"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    out = tmp_path / "out.csv"
    cmd = [
        str(Path(sys.executable).with_name("aws")),
        "--endpoint-url",
        server.endpoint,
        "s3api",
        "select-object-content",
        "--bucket",
        bucket,
        "--key",
        "cli.csv",
        "--expression",
        "SELECT s.name FROM S3Object s WHERE s.city = 'Rome'",
        "--expression-type",
        "SQL",
        "--input-serialization",
        '{"CSV": {"FileHeaderInfo": "USE"}}',
        "--output-serialization",
        '{"CSV": {}}',
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"carol\n"


# -- streaming ------------------------------------------------------------------------------------------
def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_memory_stays_bounded_and_early_close(tmp_path: Path) -> None:
    """A 96 MiB CSV scanned with its own server: peak RSS grows far less than the object."""
    from conftest import start_server

    srv = start_server(tmp_path / "data")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="mem")
        line = b"x" * 1000 + b",1\n"
        path = tmp_path / "big.csv"
        with path.open("wb") as f:
            for _ in range(96):
                f.write(line * (1024 * 1024 // len(line) + 1))
        s3.upload_file(str(path), "mem", "big.csv")
        before = _peak_rss_kib(srv.proc.pid)
        sql = "SELECT COUNT(*), SUM(CAST(_2 AS INT)) FROM S3Object WHERE _1 <> 'y'"
        data, _ = select(s3, "mem", "big.csv", sql, {"CSV": {}})
        n = 96 * (1024 * 1024 // len(line) + 1)
        assert rows(data) == [[str(n), str(n)]]
        grown = _peak_rss_kib(srv.proc.pid) - before
        assert grown < 32 * 1024, f"peak RSS grew by {grown} KiB"
        # A client that stops reading after the first event: the server drops the query and keeps serving.
        resp = s3.select_object_content(
            Bucket="mem",
            Key="big.csv",
            Expression="SELECT * FROM S3Object",
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization=CSV_OUT,
        )
        stream = resp["Payload"]
        assert "Records" in next(iter(stream))
        stream.close()
        assert s3.head_object(Bucket="mem", Key="big.csv")["ContentLength"] == path.stat().st_size
        data, _ = select(s3, "mem", "big.csv", "SELECT _2 FROM S3Object LIMIT 1", {"CSV": {}})
        assert data == b"1\n"
    finally:
        srv.stop()


def test_csv_quoted_record_delimiter_option(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="q.csv", Body=b'a,"x\ny",b\nc,d,e\n')
    allow = {"CSV": {"AllowQuotedRecordDelimiter": True}}
    data, _ = select(s3, bucket, "q.csv", "SELECT _2, _3 FROM S3Object", allow, JSON_OUT)
    assert jrows(data) == [{"_2": "x\ny", "_3": "b"}, {"_2": "d", "_3": "e"}]
    data, _ = select(s3, bucket, "q.csv", "SELECT COUNT(*) FROM S3Object", {"CSV": {}})
    assert data == b"3\n"  # without the option every line is a record


def test_parquet_nested_columns_and_types(s3: Any, bucket: str) -> None:
    """A struct column before the filtered one: statistics must be looked up by leaf column."""
    n = 3000
    table = pa.table(
        {
            "meta": pa.array([{"a": n - i, "b": str(i)} for i in range(n)]),
            "id": pa.array(range(n), pa.int32()),
            "price": pa.array([i / 4 for i in range(n)], pa.float32()),
            "num_s": pa.array([str(i) for i in range(n)]),
        }
    )
    put_parquet(s3, bucket, "n.parquet", table, 500)
    sql = "SELECT s.id, s.meta.b AS b FROM S3Object s WHERE s.id >= 2998"
    data, _ = select(s3, bucket, "n.parquet", sql, {"Parquet": {}}, JSON_OUT)
    assert jrows(data) == [{"id": 2998, "b": "2998"}, {"id": 2999, "b": "2999"}]
    # NOT over a condition pyarrow cannot express; a string column compared with a number, which
    # pyarrow refuses and S3 Select coerces: both must still come out exact.
    for where in ["NOT (s.id < 2998 OR s.meta.a > 100000)", "s.num_s > 2997", "s.id IN (2998, 2999)"]:
        data, _ = select(
            s3, bucket, "n.parquet", f"SELECT s.id FROM S3Object s WHERE {where}", {"Parquet": {}}
        )
        assert rows(data) == [["2998"], ["2999"]], where
    data, _ = select(
        s3, bucket, "n.parquet", "SELECT MAX(s.meta.a), SUM(price) FROM S3Object s", {"Parquet": {}}
    )
    assert rows(data) == [[str(n), str(sum(i / 4 for i in range(n)))]]

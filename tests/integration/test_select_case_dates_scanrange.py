"""S3 Select over HTTP with boto3: CASE and the date functions on CSV and Parquet, and ScanRange on
Parquet (a range owns the row groups whose first byte lies inside it, as AWS documents)."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError


def select(s3: Any, bucket: str, key: str, sql: str, inp: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    resp = s3.select_object_content(
        Bucket=bucket,
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=inp,
        OutputSerialization={"JSON": {}},
        **kw,
    )
    data = b"".join(ev["Records"]["Payload"] for ev in resp["Payload"] if "Records" in ev)
    return [json.loads(line) for line in data.decode().splitlines()]


EVENTS = (
    b"name,ts,n\n"
    b"launch,1969-07-16T13:32:00Z,3\n"
    b"landing,1969-07-20T20:17:40Z,12\n"
    b"splashdown,1969-07-24T16:50:35Z,40\n"
    b"shuttle,1981-04-12T12:00:04+02:00,7\n"
)


def test_case_and_dates_on_csv(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ev.csv", Body=EVENTS)
    inp = {"CSV": {"FileHeaderInfo": "USE"}}
    sql = (
        "SELECT s.name, CASE WHEN CAST(s.n AS INT) >= 10 THEN 'many' ELSE 'few' END AS size, "
        "EXTRACT(DAY FROM TO_TIMESTAMP(s.ts)) AS d, "
        "DATE_DIFF(hour, TO_TIMESTAMP('1969-07-16T13:32:00Z'), TO_TIMESTAMP(s.ts)) AS h, "
        "TO_STRING(TO_TIMESTAMP(s.ts), 'MMM d, yyyy h:mm a') AS pretty, "
        "DATE_ADD(day, 1, TO_TIMESTAMP(s.ts)) AS next "
        "FROM S3Object s WHERE EXTRACT(YEAR FROM CAST(s.ts AS TIMESTAMP)) = 1969 AND s.name <> 'launch'"
    )
    assert select(s3, bucket, "ev.csv", sql, inp) == [
        {
            "name": "landing",
            "size": "many",
            "d": 20,
            "h": 102,
            "pretty": "Jul 20, 1969 8:17 PM",
            "next": "1969-07-21T20:17:40Z",
        },
        {
            "name": "splashdown",
            "size": "many",
            "d": 24,
            "h": 195,
            "pretty": "Jul 24, 1969 4:50 PM",
            "next": "1969-07-25T16:50:35Z",
        },
    ]
    sql = "SELECT s.name, CASE s.name WHEN 'shuttle' THEN EXTRACT(TIMEZONE_HOUR FROM TO_TIMESTAMP(s.ts)) END AS tz FROM S3Object s"
    assert select(s3, bucket, "ev.csv", sql, inp) == [
        {"name": "launch", "tz": None},  # no WHEN matched and no ELSE: NULL
        {"name": "landing", "tz": None},
        {"name": "splashdown", "tz": None},
        {"name": "shuttle", "tz": 2},
    ]
    with pytest.raises(ClientError) as ei:
        select(s3, bucket, "ev.csv", "SELECT TO_STRING(TO_TIMESTAMP(s.ts), 'yyyy Q') FROM S3Object s", inp)
    # Found while evaluating records, after the 200: AWS sends it as the stream's error event.
    assert ei.value.response["Error"]["Code"] == "EvaluatorInvalidTimestampFormatPatternSymbol"


def timed_table(n: int) -> pa.Table:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "ts": pa.array(
                [base + dt.timedelta(hours=7 * i) for i in range(n)], pa.timestamp("ms", tz="UTC")
            ),
            "v": pa.array([(i * 37) % 101 for i in range(n)], pa.int64()),
        }
    )


def parquet_bytes(table: pa.Table, row_group: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group)
    return buf.getvalue()


def test_case_and_dates_on_parquet_match_pyarrow(s3: Any, bucket: str) -> None:
    table = timed_table(20_000)
    s3.put_object(Bucket=bucket, Key="t.parquet", Body=parquet_bytes(table, 4000))
    sql = (
        "SELECT COUNT(*), SUM(CASE WHEN s.v > 50 THEN s.v ELSE 0 END), MAX(EXTRACT(YEAR FROM s.ts)) "
        "FROM S3Object s WHERE EXTRACT(MONTH FROM s.ts) = 3 AND s.ts < TO_TIMESTAMP('2030-01-01T00:00:00Z')"
    )
    (got,) = select(s3, bucket, "t.parquet", sql, {"Parquet": {}})
    cutoff = pa.scalar(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), pa.timestamp("ms", tz="UTC"))
    march = table.filter(pc.and_(pc.equal(pc.month(table["ts"]), 3), pc.less(table["ts"], cutoff)))
    big = march.filter(pc.greater(march["v"], 50))
    assert got == {
        "_1": march.num_rows,
        "_2": pc.sum(big["v"]).as_py(),
        "_3": pc.max(pc.year(march["ts"])).as_py(),
    }
    assert march.num_rows > 0
    sql = "SELECT s.id, TO_STRING(s.ts, 'yyyy-MM-dd HH:mm') AS t, DATE_DIFF(day, s.ts, UTCNOW()) > 0 AS past FROM S3Object s WHERE s.id IN (0, 19999)"
    last = table["ts"][19_999].as_py()
    assert select(s3, bucket, "t.parquet", sql, {"Parquet": {}}) == [
        {"id": 0, "t": "2024-01-01 00:00", "past": True},
        {"id": 19_999, "t": last.strftime("%Y-%m-%d %H:%M"), "past": last < dt.datetime.now(dt.UTC)},
    ]


def test_parquet_scan_range_owns_row_groups_starting_inside(s3: Any, bucket: str) -> None:
    table = timed_table(10_000)
    body = parquet_bytes(table, 1000)
    s3.put_object(Bucket=bucket, Key="r.parquet", Body=body)
    meta = pq.ParquetFile(io.BytesIO(body)).metadata
    starts = []
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        cols = [group.column(i) for i in range(group.num_columns)]
        starts.append(
            min(c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset for c in cols)
        )
    assert len(starts) == 10
    inp: dict[str, Any] = {"Parquet": {}}

    def ids(**scan: int) -> list[int]:
        rows = select(s3, bucket, "r.parquet", "SELECT s.id FROM S3Object s", inp, ScanRange=scan)
        return [r["id"] for r in rows]

    # Contiguous ranges together see every row exactly once, whatever the split points.
    step = len(body) // 7 + 1
    got: list[int] = []
    for start in range(0, len(body), step):
        got += ids(Start=start, End=start + step - 1)
    assert got == list(range(10_000))
    # A range starting exactly at a row group's first byte owns it; one byte later does not.
    assert ids(Start=starts[3], End=starts[3]) == list(range(3000, 4000))
    assert ids(Start=starts[3] + 1, End=starts[4] - 1) == []
    assert ids(Start=starts[8]) == list(range(8000, 10_000))  # open end
    assert ids(End=len(body) - starts[9]) == list(range(9000, 10_000))  # the last N bytes
    # Filters and aggregates still apply inside the range.
    rows = select(
        s3,
        bucket,
        "r.parquet",
        "SELECT COUNT(*), MIN(s.id) FROM S3Object s WHERE s.v > 50",
        inp,
        ScanRange={"Start": starts[2], "End": starts[4] - 1},
    )
    part = table.slice(2000, 2000)
    want = part.filter(pc.greater(part["v"], 50))
    assert rows == [{"_1": want.num_rows, "_2": pc.min(want["id"]).as_py()}]

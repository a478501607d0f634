"""Record readers for S3 Select: CSV, JSON (DOCUMENT, LINES) and Parquet, streamed from a Source.

A Source hands out byte ranges as iterators of chunks, so no reader ever holds the whole object;
Parquet reads only the column chunks of referenced columns in row groups the statistics allow.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import io
import itertools
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from rs3gw import errors
from rs3gw.select.evaluate import expand_from
from rs3gw.select.nodes import Between, Binary, Expr, Lit, Name, Path, Query, Unary, children
from rs3gw.select.request import SelectRequest
from rs3gw.select.values import compare

BATCH_ROWS = 65_536
MAX_RECORD = 1 << 20  # AWS: a record (CSV row, JSON line) is at most 1 MB
MAX_DOCUMENT = 64 << 20  # one top-level value of a JSON DOCUMENT is held whole, so it is capped
csv.field_size_limit(MAX_RECORD)


class Source(Protocol):
    size: int
    scanned: int

    def read(self, start: int, length: int) -> Iterator[bytes]: ...


@dataclass
class Opened:
    """An input ready to run: column names (None for JSON) and the record iterator."""

    names: Sequence[str] | None
    records: Iterator[Any]
    processed: Callable[[], int]


def _err(code: str, msg: str | None = None) -> errors.S3Error:
    return errors.error_class(code)(msg)


# -- bytes ----------------------------------------------------------------------------------------
class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for c in chunks:
            self.n += len(c)
            yield c


def decompress(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
    """GZIP and BZIP2, including concatenated members/streams (as gzip -c a b > c makes)."""
    if compression == "NONE":
        yield from chunks
        return
    make: Callable[[], Any] = (
        (lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)) if compression == "GZIP" else bz2.BZ2Decompressor
    )
    d = make()
    try:
        for chunk in chunks:
            while chunk:
                out = d.decompress(chunk)
                if out:
                    yield out
                if not d.eof:
                    break
                chunk = d.unused_data
                d = make()
    except (zlib.error, OSError, EOFError, ValueError):
        raise _err("InvalidCompressionFormat", f"The object is not valid {compression} data") from None


def split_records(
    chunks: Iterable[bytes], delim: bytes, pos: int = 0, last_start: int | None = None
) -> Iterator[bytes]:
    """Records without their delimiter; stops at the first record starting after ``last_start``."""
    rest = b""
    step = len(delim)
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        parts = data.split(delim)
        rest = parts.pop()
        if len(rest) > MAX_RECORD:
            raise _err("OverMaxRecordSize")
        for p in parts:
            if last_start is not None and pos > last_start:
                return
            yield p
            pos += len(p) + step
    if rest and (last_start is None or pos <= last_start):
        yield rest


def _ranged(req: SelectRequest, src: Source, delim: bytes) -> Iterator[bytes]:
    """The records a ScanRange owns: those whose first byte lies inside it (AWS semantics)."""
    start, end = req.scan_start, req.scan_end
    if start is None and end is None:
        return split_records(src.read(0, src.size), delim)
    if start is None:
        start, end = max(src.size - (end or 0), 0), src.size - 1
    last = src.size - 1 if end is None else min(end, src.size - 1)
    if start >= src.size:
        return iter(())
    if start == 0:
        return split_records(src.read(0, src.size), delim, 0, last)
    # Read from one byte early: a delimiter there means a record starts exactly at ``start``.
    it = split_records(src.read(start - 1, src.size - start + 1), delim, start - 1, last)
    first = next(it, None)
    if first is None:
        return iter(())
    return it


def _input_records(req: SelectRequest, src: Source, delim: bytes, counter: _Counter) -> Iterator[bytes]:
    if req.compression == "NONE":
        return _ranged(req, _TappedSource(src, counter), delim)
    return split_records(counter.tap(decompress(src.read(0, src.size), req.compression)), delim)


def _decode(raw: bytes, code: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _err(code, "The input is not valid UTF-8") from None


# -- CSV --------------------------------------------------------------------------------------------
def _csv_lines(lines: Iterable[bytes], comment: str | None, newline_delim: bool) -> Iterator[str]:
    for raw in lines:
        line = _decode(raw, "CSVParsingError")
        if comment and line.startswith(comment):
            continue
        if not line.strip("\r") and newline_delim:
            continue
        yield line + "\n"


def open_csv(req: SelectRequest, src: Source) -> Opened:
    c = req.csv
    delim = c.record_delimiter.encode()
    newline = c.record_delimiter in ("\n", "\r\n", "\r")
    if c.record_delimiter == "\r\n":
        delim = b"\n"
    counter = _Counter()
    raw = _input_records(req, src, delim, counter)
    rows = _csv_rows(_csv_lines(raw, c.comments, newline), req)
    names: list[str] | None = None
    if c.file_header_info != "NONE":
        in_range = req.scan_start == 0 or (req.scan_start is None and req.scan_end is None)
        head_rows = (
            rows if in_range else _csv_rows(_csv_lines(_head_lines(src, delim), c.comments, newline), req)
        )
        header = next(head_rows, None)
        if c.file_header_info == "USE" and header is not None:
            names = [h.strip() for h in header]
    return Opened(names, rows, lambda: counter.n)


def _head_lines(src: Source, delim: bytes) -> Iterator[bytes]:
    return split_records(src.read(0, src.size), delim)


class _TappedSource:
    def __init__(self, src: Source, counter: _Counter) -> None:
        self.src, self.counter = src, counter
        self.size, self.scanned = src.size, 0

    def read(self, start: int, length: int) -> Iterator[bytes]:
        return self.counter.tap(self.src.read(start, length))


def _csv_rows(lines: Iterator[str], req: SelectRequest) -> Iterator[list[str]]:
    c = req.csv
    reader_args: dict[str, Any] = {
        "delimiter": c.field_delimiter,
        "quotechar": c.quote,
        "escapechar": c.quote_escape if c.quote_escape != c.quote else None,
        "doublequote": True,
        "strict": False,
    }
    reader = csv.reader(lines, **reader_args)
    try:
        if c.allow_quoted_record_delimiter:
            yield from reader
        else:  # each line is a whole record: a quote cannot carry a record across lines
            for line in lines:
                yield from _one_line(line, reader_args)
    except csv.Error as e:
        raise _err("CSVParsingError", f"CSV parsing failed: {e}") from None


def _one_line(line: str, args: dict[str, Any]) -> Iterator[list[str]]:
    for row in csv.reader((line.removesuffix("\n").removesuffix("\r"),), **args):
        yield row
        return


# -- JSON -------------------------------------------------------------------------------------------
def open_json(req: SelectRequest, query: Query, src: Source) -> Opened:
    counter = _Counter()
    if req.json_type == "LINES":
        values: Iterator[Any] = _json_lines(_input_records(req, src, b"\n", counter))
    else:
        values = _json_document(counter.tap(decompress(src.read(0, src.size), req.compression)))
    path = query.from_path
    records = values if not path or path == ("*",) else _expand(values, path)
    return Opened(None, records, lambda: counter.n)


def _expand(values: Iterator[Any], path: Sequence[Name | str]) -> Iterator[Any]:
    for v in values:
        yield from expand_from(v, path)


def _json_lines(lines: Iterable[bytes]) -> Iterator[Any]:
    for raw in lines:
        if not raw.strip():
            continue
        try:
            yield json.loads(raw)
        except ValueError:
            raise _err("JSONParsingError", "A line is not valid JSON") from None


def _json_document(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Concatenated top-level JSON values; a value is retried only once the buffer has doubled."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    retry_at = 0
    chunk_iter = iter(chunks)
    done = False
    while True:
        buf = buf.lstrip()
        if buf and (len(buf) >= retry_at or done):
            try:
                value, end = decoder.raw_decode(buf)
            except ValueError:
                if done:
                    raise _err("JSONParsingError", "The document is not valid JSON") from None
                retry_at = 2 * len(buf)
            else:
                yield value
                buf = buf[end:]
                retry_at = 0
                continue
        if done:
            return
        if len(buf) > MAX_DOCUMENT:
            raise _err("OverMaxRecordSize", "A JSON document value is larger than 64 MiB")
        chunk = next(chunk_iter, None)
        try:
            if chunk is None:
                done = True
                buf += text_decoder.decode(b"", final=True)
            else:
                buf += text_decoder.decode(chunk)
        except UnicodeDecodeError:
            raise _err("JSONParsingError", "The input is not valid UTF-8") from None


# -- Parquet ----------------------------------------------------------------------------------------
class RangeFile(io.RawIOBase):
    """A seekable read-only file over a Source, for pyarrow's random access to footer and chunks."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.src.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = min(len(view), self.src.size - self.pos)
        if n <= 0:
            return 0
        got = 0
        for chunk in self.src.read(self.pos, n):
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        self.pos += got
        return got


def referenced_columns(q: Query) -> set[str] | None:
    """Lower-cased column names the query reads, or None when it needs every column."""
    if q.items is None:
        return None
    out: set[str] = set()
    alias = q.alias.lower() if q.alias else None
    exprs: list[Expr] = [i.expr for i in q.items] + ([q.where] if q.where is not None else [])
    while exprs:
        e = exprs.pop()
        if isinstance(e, Path):
            steps = list(e.steps)
            first = steps[0]
            assert isinstance(first, Name)
            if not first.quoted and first.name.lower() in (alias, "s3object") and len(steps) > 1:
                steps.pop(0)
            elif not first.quoted and alias is not None and first.name.lower() == alias:
                return None  # the whole record
            head = steps[0]
            if not isinstance(head, Name) or (
                not head.quoted and head.name[:1] == "_" and head.name[1:].isdigit()
            ):
                return None  # positional: needs the schema order
            out.add(head.name.lower())
        else:
            exprs.extend(children(e))
    return out


def _bounds(q: Query) -> list[tuple[str, str, Any]]:
    """(column, op, literal) conjuncts of WHERE that row-group statistics can rule out."""
    out: list[tuple[str, str, Any]] = []
    todo: list[Expr] = [q.where] if q.where is not None else []
    flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
    while todo:
        e = todo.pop()
        if isinstance(e, Binary) and e.op == "AND":
            todo += [e.left, e.right]
        elif isinstance(e, Binary) and e.op in flip:
            if isinstance(e.left, Path) and isinstance(e.right, Lit):
                out += _bound(e.left, e.op, e.right.value, q)
            elif isinstance(e.right, Path) and isinstance(e.left, Lit):
                out += _bound(e.right, flip[e.op], e.left.value, q)
        elif (
            isinstance(e, Between)
            and not e.negate
            and isinstance(e.arg, Path)
            and isinstance(e.low, Lit)
            and isinstance(e.high, Lit)
        ):
            out += _bound(e.arg, ">=", e.low.value, q) + _bound(e.arg, "<=", e.high.value, q)
    return out


def _bound(p: Path, op: str, value: Any, q: Query) -> list[tuple[str, str, Any]]:
    steps = list(p.steps)
    first = steps[0]
    if isinstance(first, Name) and q.alias and first.name.lower() == q.alias.lower() and len(steps) > 1:
        steps.pop(0)
    if len(steps) != 1 or not isinstance(steps[0], Name) or value is None:
        return []
    return [(steps[0].name.lower(), op, value)]


def _may_match(op: str, value: Any, lo: Any, hi: Any) -> bool:
    try:
        if op == "=":
            return compare("<=", lo, value) is not False and compare(">=", hi, value) is not False
        if op in ("<", "<="):
            return compare(op, lo, value) is not False
        return compare(op, hi, value) is not False
    except errors.S3Error:
        return True


def _row_groups(pf: Any, q: Query) -> list[int]:
    meta = pf.metadata
    leaves: dict[str, int] = {}  # statistics are per leaf column; top-level primitives only
    if meta.num_row_groups:
        first = meta.row_group(0)
        for i in range(first.num_columns):
            path = first.column(i).path_in_schema
            if "." not in path:
                leaves.setdefault(path.lower(), i)
    bounds = [(leaves[c], op, v) for c, op, v in _bounds(q) if c in leaves]
    keep = []
    for rg in range(pf.metadata.num_row_groups):
        meta = pf.metadata.row_group(rg)
        ok = True
        for col, op, v in bounds:
            st = meta.column(col).statistics
            if st is not None and st.has_min_max and not _may_match(op, v, st.min, st.max):
                ok = False
                break
        if ok:
            keep.append(rg)
    return keep


_ARROW_CMP = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


class _ArrowFilter:
    """WHERE as a pyarrow expression that keeps at least every row the SQL would keep.

    Batches are pre-filtered with it in C++, and only survivors are evaluated exactly in Python;
    a conjunct it cannot express is dropped (a superset), and NOT takes only exact translations.
    """

    def __init__(self, q: Query, names: Sequence[str]) -> None:
        import pyarrow.compute as pc

        self.pc = pc
        self.alias = q.alias.lower() if q.alias else None
        self.by_lower: dict[str, str] = {}
        for n in names:
            self.by_lower.setdefault(n.lower(), n)
        self.names = set(names)

    def build(self, e: Expr) -> Any:
        return self._tr(e)[0]

    def _col(self, e: Expr) -> Any:
        if not isinstance(e, Path):
            return None
        steps = list(e.steps)
        first = steps[0]
        if (
            isinstance(first, Name)
            and not first.quoted
            and len(steps) > 1
            and first.name.lower() == self.alias
        ):
            steps.pop(0)
        if len(steps) != 1 or not isinstance(steps[0], Name):
            return None
        st = steps[0]
        name = (
            (st.name if st.name in self.names else None) if st.quoted else self.by_lower.get(st.name.lower())
        )
        return None if name is None else self.pc.field(name)

    @staticmethod
    def _lit(e: Expr) -> Any:
        if not isinstance(e, Lit) or e.value is None:
            return None
        v = e.value
        return float(v) if isinstance(v, Decimal) else v

    def _tr(self, e: Expr) -> tuple[Any, bool]:
        """(expression or None, exact)."""
        if isinstance(e, Binary) and e.op == "AND":
            (a, ea), (b, eb) = self._tr(e.left), self._tr(e.right)
            if a is None or b is None:
                return (a if b is None else b), False
            return a & b, ea and eb
        if isinstance(e, Binary) and e.op == "OR":
            (a, ea), (b, eb) = self._tr(e.left), self._tr(e.right)
            return (None, False) if a is None or b is None else (a | b, ea and eb)
        if isinstance(e, Unary) and e.op == "NOT":
            a, exact = self._tr(e.arg)
            return (~a, True) if a is not None and exact else (None, False)
        if isinstance(e, Binary) and e.op in _ARROW_CMP:
            col, lit = self._col(e.left), self._lit(e.right)
            op = e.op
            if col is None or lit is None:
                col, lit = self._col(e.right), self._lit(e.left)
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            if col is None or lit is None:
                return None, False
            return getattr(col, _ARROW_CMP[op])(lit), True
        if isinstance(e, Between) and not e.negate:
            col, lo, hi = self._col(e.arg), self._lit(e.low), self._lit(e.high)
            if col is None or lo is None or hi is None:
                return None, False
            return (col >= lo) & (col <= hi), True
        return None, False


def _scan_range_groups(pf: Any, req: SelectRequest, size: int) -> set[int] | None:
    """Row groups a ScanRange owns: those whose first byte lies inside it (AWS semantics for Parquet)."""
    start, end = req.scan_start, req.scan_end
    if start is None and end is None:
        return None
    if start is None:
        start, end = max(size - (end or 0), 0), size - 1
    last = size - 1 if end is None else end
    owned = set()
    for rg in range(pf.metadata.num_row_groups):
        meta = pf.metadata.row_group(rg)
        first = min(
            (c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset)
            for c in (meta.column(i) for i in range(meta.num_columns))
        )
        if start <= first <= last:
            owned.add(rg)
    return owned


def open_parquet(req: SelectRequest, query: Query, src: Source) -> Opened:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(RangeFile(src))
    except (pa.ArrowException, OSError, ValueError) as e:
        raise _err("ParquetParsingError", f"The object is not a valid Parquet file: {e}") from None
    names = pf.schema_arrow.names
    wanted = referenced_columns(query)
    cols = names if wanted is None else [n for n in names if n.lower() in wanted]
    groups = _row_groups(pf, query) if query.where is not None else list(range(pf.num_row_groups))
    owned = _scan_range_groups(pf, req, src.size)
    if owned is not None:
        groups = [g for g in groups if g in owned]
    processed = [0]
    flt = _ArrowFilter(query, cols).build(query.where) if query.where is not None else None

    def records() -> Iterator[tuple[Any, ...]]:
        nonlocal flt
        try:
            for whole in pf.iter_batches(BATCH_ROWS, row_groups=groups, columns=cols, use_threads=False):
                processed[0] += whole.nbytes
                batch = whole
                if flt is not None:
                    try:
                        batch = whole.filter(flt)
                    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                        flt = None  # types pyarrow will not compare: Python's coercions decide
                if not cols:
                    yield from itertools.repeat((), batch.num_rows)
                    continue
                yield from zip(*[c.to_pylist() for c in batch.columns], strict=True)
        except pa.ArrowException as e:
            raise _err("ParquetParsingError", f"Parquet read failed: {e}") from None

    return Opened(cols, records(), lambda: processed[0])


def open_input(req: SelectRequest, query: Query, src: Source) -> Opened:
    if req.input_format == "CSV":
        return open_csv(req, src)
    if req.input_format == "JSON":
        return open_json(req, query, src)
    return open_parquet(req, query, src)

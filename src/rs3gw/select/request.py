"""The SelectObjectContentRequest XML body as a typed, validated value (AWS's error codes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import Any

from rs3gw import errors


def _err(code: str, msg: str | None = None) -> errors.S3Error:
    return errors.error_class(code)(msg)


@dataclass(frozen=True)
class CsvInput:
    file_header_info: str = "NONE"
    comments: str | None = None
    quote_escape: str = '"'
    record_delimiter: str = "\n"
    field_delimiter: str = ","
    quote: str = '"'
    allow_quoted_record_delimiter: bool = False


@dataclass(frozen=True)
class CsvOutput:
    quote_fields: str = "ASNEEDED"
    quote_escape: str = '"'
    record_delimiter: str = "\n"
    field_delimiter: str = ","
    quote: str = '"'


@dataclass(frozen=True)
class JsonOutput:
    record_delimiter: str = "\n"


@dataclass(frozen=True)
class SelectRequest:
    expression: str
    input_format: str  # CSV, JSON, PARQUET
    compression: str = "NONE"
    csv: CsvInput = field(default_factory=CsvInput)
    json_type: str = "DOCUMENT"
    output: CsvOutput | JsonOutput = field(default_factory=CsvOutput)
    progress: bool = False
    scan_start: int | None = None
    scan_end: int | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element | None, name: str, default: str | None = None) -> str | None:
    if el is None:
        return default
    c = _child(el, name)
    if c is None:
        return default
    return c.text or ""


def _one_char(value: str | None, default: str, name: str, allow_two: bool = False) -> str:
    if value is None or value == "":
        return default
    if len(value) == 1 or (allow_two and value == "\r\n"):
        return value
    raise _err("InvalidRequestParameter", f"{name} must be a single character")


def parse_request(body: bytes) -> SelectRequest:
    if not body.strip():
        raise _err("EmptyRequestBody")
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise errors.MalformedXML()
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise errors.MalformedXML() from None
    expression = _text(root, "Expression")
    if not expression:
        raise _err("MissingRequiredParameter", "Expression is required")
    etype = _text(root, "ExpressionType")
    if etype is None:
        raise _err("MissingRequiredParameter", "ExpressionType is required")
    if etype.upper() != "SQL":
        raise _err("InvalidExpressionType")
    inp, out = _child(root, "InputSerialization"), _child(root, "OutputSerialization")
    if inp is None or out is None:
        raise _err("MissingRequiredParameter", "InputSerialization and OutputSerialization are required")
    progress = (_text(_child(root, "RequestProgress"), "Enabled", "false") or "").lower() == "true"
    req = SelectRequest(expression=expression, progress=progress, output=_output(out), **_input(inp))
    return _with_scan_range(req, _child(root, "ScanRange"))


def _input(inp: ET.Element) -> dict[str, Any]:
    formats = [c for c in inp if _local(c.tag) in ("CSV", "JSON", "Parquet")]
    if len(formats) > 1:
        raise _err("ObjectSerializationConflict")
    if not formats:
        raise _err("MissingRequiredParameter", "InputSerialization needs CSV, JSON or Parquet")
    compression = (_text(inp, "CompressionType", "NONE") or "NONE").upper()
    if compression not in ("NONE", "GZIP", "BZIP2"):
        raise _err("InvalidCompressionFormat")
    fmt = formats[0]
    kind = _local(fmt.tag).upper()
    out: dict[str, Any] = {"input_format": kind, "compression": compression}
    if kind == "PARQUET" and compression != "NONE":
        raise _err("InvalidRequestParameter", "Parquet input does not take a CompressionType")
    if kind == "JSON":
        jtype = (_text(fmt, "Type", "DOCUMENT") or "DOCUMENT").upper()
        if jtype not in ("DOCUMENT", "LINES"):
            raise _err("InvalidJsonType")
        out["json_type"] = jtype
    if kind == "CSV":
        out["csv"] = _csv_input(fmt)
    return out


def _csv_input(el: ET.Element) -> CsvInput:
    header = (_text(el, "FileHeaderInfo", "NONE") or "NONE").upper()
    if header not in ("NONE", "USE", "IGNORE"):
        raise _err("InvalidFileHeaderInfo")
    comments = _text(el, "Comments")
    allow = (_text(el, "AllowQuotedRecordDelimiter", "false") or "false").lower()
    if allow not in ("true", "false"):
        raise _err("InvalidRequestParameter", "AllowQuotedRecordDelimiter must be TRUE or FALSE")
    return CsvInput(
        file_header_info=header,
        comments=_one_char(comments, "", "Comments") or None,
        quote_escape=_one_char(_text(el, "QuoteEscapeCharacter"), '"', "QuoteEscapeCharacter"),
        record_delimiter=_one_char(_text(el, "RecordDelimiter"), "\n", "RecordDelimiter", True),
        field_delimiter=_one_char(_text(el, "FieldDelimiter"), ",", "FieldDelimiter"),
        quote=_one_char(_text(el, "QuoteCharacter"), '"', "QuoteCharacter"),
        allow_quoted_record_delimiter=allow == "true",
    )


def _output(out: ET.Element) -> CsvOutput | JsonOutput:
    formats = [c for c in out if _local(c.tag) in ("CSV", "JSON")]
    if len(formats) != 1:
        if len(formats) > 1:
            raise _err("ObjectSerializationConflict", "OutputSerialization specifies more than one format")
        raise _err("MissingRequiredParameter", "OutputSerialization needs CSV or JSON")
    el = formats[0]
    if _local(el.tag) == "JSON":
        return JsonOutput(_one_char(_text(el, "RecordDelimiter"), "\n", "RecordDelimiter", True))
    qf = (_text(el, "QuoteFields", "ASNEEDED") or "ASNEEDED").upper()
    if qf not in ("ALWAYS", "ASNEEDED"):
        raise _err("InvalidQuoteFields")
    return CsvOutput(
        quote_fields=qf,
        quote_escape=_one_char(_text(el, "QuoteEscapeCharacter"), '"', "QuoteEscapeCharacter"),
        record_delimiter=_one_char(_text(el, "RecordDelimiter"), "\n", "RecordDelimiter", True),
        field_delimiter=_one_char(_text(el, "FieldDelimiter"), ",", "FieldDelimiter"),
        quote=_one_char(_text(el, "QuoteCharacter"), '"', "QuoteCharacter"),
    )


def _with_scan_range(req: SelectRequest, el: ET.Element | None) -> SelectRequest:
    if el is None:
        return req
    start_s, end_s = _text(el, "Start"), _text(el, "End")
    try:
        start = int(start_s) if start_s else None
        end = int(end_s) if end_s else None
    except ValueError:
        raise _err("InvalidScanRange", "ScanRange Start and End must be integers") from None
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise _err("InvalidScanRange")
    if start is not None and end is not None and end < start:
        raise _err("InvalidScanRange", "ScanRange End must not be before Start")
    # AWS: scan ranges work on uncompressed CSV, JSON LINES and Parquet (by row group) objects only.
    if req.compression != "NONE" or (req.input_format == "JSON" and req.json_type != "LINES"):
        raise _err("UnsupportedScanRangeInput")
    return replace(req, scan_start=start, scan_end=end)

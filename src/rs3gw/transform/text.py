"""Object Lambda-style text steps: PII redaction, upper/lower case, prefix/suffix, JSON pretty/minify.

Text is UTF-8 decoded with ``surrogateescape``, so bytes that are not UTF-8 pass through unchanged
instead of failing half-way through a streamed body. Redaction works line by line.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable

from rs3gw.transform.args import Args
from rs3gw.transform.spec import Step, invalid
from rs3gw.transform.stage import BUFFER, STREAM, Stage, Streamer

STEPS = frozenset({"upper", "lower", "prefix", "suffix", "redact", "json-pretty", "json-minify"})
PII_KINDS = ("email", "phone", "card")
MAX_LINE = 1 << 20  # a longer "line" is redacted as it stands (a match across the cut may survive)

_PII = re.compile(
    r"(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<card>(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-]))"
    r"|(?P<phone>(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w)"
    r"|(?<![\w+])\+\d{1,3}(?:[ .-]?\d{1,4}){2,4}(?![\w-]))"
)


def luhn_valid(digits: str) -> bool:
    """The card-number checksum (ISO/IEC 7812): only numbers passing it are treated as cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return len(digits) >= 13 and total % 10 == 0


def redact_text(text: str, kinds: frozenset[str] = frozenset(PII_KINDS)) -> str:
    def sub(m: re.Match[str]) -> str:
        kind = m.lastgroup or ""
        if kind not in kinds:
            return m.group(0)
        if kind == "card" and not luhn_valid(re.sub(r"\D", "", m.group(0))):
            return m.group(0)
        return f"[REDACTED-{kind.upper()}]"

    return _PII.sub(sub, text)


class _TextStreamer:
    """Incremental UTF-8 in and out around a str function; ``lines`` holds back partial lines."""

    def __init__(self, fn: Callable[[str], str], lines: bool) -> None:
        self.fn = fn
        self.lines = lines
        self.dec = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.tail = ""

    def _out(self, text: str) -> bytes:
        return self.fn(text).encode("utf-8", errors="surrogateescape")

    def feed(self, data: bytes) -> bytes:
        text = self.tail + self.dec.decode(data)
        if not self.lines:
            self.tail = ""
            return self._out(text)
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) < MAX_LINE:
            self.tail = text
            return b""
        cut = cut or len(text)
        self.tail = text[cut:]
        return self._out(text[:cut])

    def flush(self) -> bytes:
        text = self.tail + self.dec.decode(b"", final=True)
        self.tail = ""
        return self._out(text) if text else b""


class _Affix:
    """Prefix or suffix: bytes added once at the start or the end of the stream."""

    def __init__(self, data: bytes, at_start: bool) -> None:
        self.data = data
        self.at_start = at_start
        self.started = False

    def feed(self, data: bytes) -> bytes:
        if self.at_start and not self.started:
            self.started = True
            return self.data + data
        return data

    def flush(self) -> bytes:
        if self.at_start and not self.started:
            self.started = True
            return self.data
        return b"" if self.at_start else self.data


def _json(data: bytes, indent: int | None) -> bytes:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise invalid("the object is not a JSON document") from None
    if indent is None:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return (json.dumps(doc, ensure_ascii=False, indent=indent) + "\n").encode()


def compile_text(step: Step) -> Stage:
    name = step.name
    if name in ("upper", "lower"):
        Args(step).done()
        fn = str.upper if name == "upper" else str.lower
        return Stage(name, STREAM, streamer=lambda: _TextStreamer(fn, lines=False))
    if name in ("prefix", "suffix"):
        a = Args(step, "text")
        text = a.text("text")
        a.done()
        if text is None:
            raise invalid(f"transformation {name!r} needs text=...")
        raw = text.encode()
        return Stage(name, STREAM, streamer=lambda: _Affix(raw, name == "prefix"))
    if name == "redact":
        a = Args(step, "types")
        kinds = frozenset((a.text("types") or "+".join(PII_KINDS)).lower().split("+"))
        a.done()
        if not kinds or not kinds <= set(PII_KINDS):
            raise invalid(f"transformation 'redact': types is '+'-joined {', '.join(PII_KINDS)}")
        return Stage(name, STREAM, streamer=lambda: _redactor(kinds))
    if name == "json-pretty":
        a = Args(step, "indent")
        indent = a.integer("indent", 0, 8, 2)
        a.done()
        return Stage(name, BUFFER, "application/json", apply=lambda d: _json(d, indent))
    Args(step).done()
    return Stage(name, BUFFER, "application/json", apply=lambda d: _json(d, None))


def _redactor(kinds: frozenset[str]) -> Streamer:
    return _TextStreamer(lambda t: redact_text(t, kinds), lines=True)

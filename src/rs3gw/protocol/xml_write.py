"""Minimal string-joining XML builder for S3 responses (listings render thousands of elements).

Control characters XML 1.0 cannot carry are written as numeric character references
(e.g. "&#x1;"). Strict XML 1.0 parsers reject those too, so this only keeps output well-formed
enough for lenient readers: clients that need such keys must ask for encoding-type=url, which the
protocol layer applies before text reaches this builder.
"""

from __future__ import annotations

import re

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters needing escapes: markup, CR (a raw CR would be normalised to LF by the reader),
# C0 controls other than TAB/LF, lone surrogates (unencodable) and the U+FFFE/U+FFFF non-characters.
_NEEDS_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FIXED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_search = _NEEDS_ESCAPE.search


def _replace(m: re.Match[str]) -> str:
    ch = m.group()
    fixed = _FIXED.get(ch)
    return fixed if fixed is not None else f"&#x{ord(ch):X};"


def escape(text: str) -> str:
    """Escape element text; the common clean string is returned untouched after one regex scan."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _NEEDS_ESCAPE.sub(_replace, text)


class XmlBuilder:
    """Appends string fragments and joins once, which is far cheaper than building a tree."""

    __slots__ = ("_open", "_out")

    def __init__(self, root: str, namespace: bool = True) -> None:
        self._out: list[str] = [_PROLOG, f'<{root} xmlns="{S3_NS}">' if namespace else f"<{root}>"]
        self._open: list[str] = [root]

    def elem(self, name: str, text: str | int | bool | None) -> XmlBuilder:
        """Leaf element; None means "field absent" and writes nothing, so callers need no ifs."""
        if text.__class__ is str:  # the common case first: listings call this 5x per key
            value = text if _search(text) is None else _NEEDS_ESCAPE.sub(_replace, text)
            self._out.append(f"<{name}>{value}</{name}>")
            return self
        if text is None:
            return self
        if isinstance(text, bool):
            value = "true" if text else "false"
        elif isinstance(text, int):
            value = str(text)
        else:
            value = escape(text)
        self._out.append(f"<{name}>{value}</{name}>")
        return self

    def raw(self, fragment: str) -> XmlBuilder:
        """Pre-built, already escaped markup: listings render each entry with one f-string."""
        self._out.append(fragment)
        return self

    def text(self, value: str) -> XmlBuilder:
        """Character data inside the innermost open element (e.g. a bare LocationConstraint)."""
        self._out.append(escape(value))
        return self

    def open(self, name: str) -> XmlBuilder:
        self._out.append(f"<{name}>")
        self._open.append(name)
        return self

    def close(self) -> XmlBuilder:
        """Close the innermost open element (including the root, if the caller wants)."""
        if not self._open:
            raise ValueError("no open element to close")
        self._out.append(f"</{self._open.pop()}>")
        return self

    def to_bytes(self) -> bytes:
        """Finish the document, closing whatever is still open."""
        while self._open:
            self._out.append(f"</{self._open.pop()}>")
        return "".join(self._out).encode("utf-8")

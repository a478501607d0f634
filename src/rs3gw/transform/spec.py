"""The transformation grammar: ``name[:arg,...]`` steps joined by ``|``, ``@point`` for named chains.

One parser for the query parameter, the ``[transforms.<name>]`` config and the Python API, so a
chain means the same wherever it is written; its canonical text keys the cache and the ETag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from rs3gw import errors

MAX_SPEC_CHARS = 2048
MAX_STEPS = 16
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
POSITIONAL = ""  # the key of a bare argument: ``format:webp`` is ``format`` with {"": "webp"}


def invalid(message: str) -> errors.S3Error:
    """The one 400 every bad spec, bad parameter or unsuitable object answers."""
    return errors.error_class("InvalidTransformation")(message)


@dataclass(frozen=True)
class Step:
    """One transformation and its raw (string) arguments, keys lower-cased."""

    name: str
    args: tuple[tuple[str, str], ...] = ()

    @property
    def params(self) -> dict[str, str]:
        return dict(self.args)

    def canonical(self) -> str:
        if not self.args:
            return self.name
        parts = [v if k == POSITIONAL else f"{k}={v}" for k, v in self.args]
        return self.name + ":" + ",".join(quote(p, safe="=+-_.~*/") for p in parts)


def canonical(steps: tuple[Step, ...]) -> str:
    return "|".join(s.canonical() for s in steps)


def _arg(text: str, step: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq:
        return POSITIONAL, unquote(text.strip())
    key = key.strip().lower()
    if not _NAME.fullmatch(key):
        raise invalid(f"transformation {step!r}: bad parameter name {key!r}")
    return key, unquote(value.strip())


def _step(text: str) -> Step:
    name, colon, rest = text.strip().partition(":")
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise invalid(f"bad transformation name {name!r} in {text.strip()!r}")
    if not colon:
        return Step(name)
    if not rest.strip():
        raise invalid(f"transformation {name!r}: empty argument list after ':'")
    args = [_arg(a, name) for a in rest.split(",")]
    keys = [k for k, _ in args]
    if len(set(keys)) != len(keys):
        raise invalid(f"transformation {name!r}: a parameter is given twice")
    return Step(name, tuple(args))


def parse_spec(text: str, points: Mapping[str, str] | None = None) -> tuple[Step, ...]:
    """Steps of ``text``; ``@name`` expands to the configured chain ``points[name]`` (one level)."""
    if len(text) > MAX_SPEC_CHARS:
        raise invalid(f"the transformation spec is longer than {MAX_SPEC_CHARS} characters")
    if not text.strip():
        raise invalid("the transformation spec is empty")
    steps: list[Step] = []
    for part in text.split("|"):
        token = part.strip()
        if token.startswith("@"):
            name = token[1:].lower()
            if points is None or name not in points:
                raise invalid(f"no transformation access point named {name!r} is configured")
            steps += parse_spec(points[name], None)
        else:
            steps.append(_step(token))
    if len(steps) > MAX_STEPS:
        raise invalid(f"a chain holds at most {MAX_STEPS} transformations")
    return tuple(steps)

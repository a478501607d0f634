"""Typed reads of a step's string arguments, every failure a clear InvalidTransformation."""

from __future__ import annotations

from collections.abc import Iterable

from rs3gw.transform.spec import POSITIONAL, Step, invalid


class Args:
    """A step's arguments; ``done()`` rejects any the transformation did not ask for."""

    def __init__(self, step: Step, positional: str | None = None) -> None:
        self.step = step
        self._left = step.params
        if POSITIONAL in self._left:
            if positional is None:
                raise invalid(f"transformation {step.name!r} takes no bare argument")
            if positional in self._left:
                raise invalid(f"transformation {step.name!r}: {positional!r} is given twice")
            self._left[positional] = self._left.pop(POSITIONAL)

    def _take(self, key: str) -> str | None:
        return self._left.pop(key, None)

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int | None:
        raw = self._take(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"transformation {self.step.name!r}: {key}={raw!r} is not an integer") from None
        if not lo <= value <= hi:
            raise invalid(f"transformation {self.step.name!r}: {key} must be {lo}..{hi}, got {value}")
        return value

    def choice(self, key: str, allowed: Iterable[str], default: str | None = None) -> str | None:
        raw = self._take(key)
        if raw is None:
            return default
        options = list(allowed)
        if raw.lower() not in options:
            raise invalid(
                f"transformation {self.step.name!r}: {key}={raw!r} is not one of {', '.join(options)}"
            )
        return raw.lower()

    def text(self, key: str, default: str | None = None, max_len: int = 4096) -> str | None:
        raw = self._take(key)
        if raw is not None and len(raw) > max_len:
            raise invalid(f"transformation {self.step.name!r}: {key} is longer than {max_len} characters")
        return default if raw is None else raw

    def done(self) -> None:
        if self._left:
            raise invalid(
                f"transformation {self.step.name!r}: unknown parameter(s) {', '.join(sorted(self._left))}"
            )

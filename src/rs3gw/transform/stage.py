"""A compiled transformation: a whole-buffer function, or a streamer that can also run buffered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

IMAGE = "image"  # needs the decoded image: whole object, under the image size limit
BUFFER = "buffer"  # needs the whole object (JSON, video, custom Python), under the buffer limit
STREAM = "stream"  # chunk by chunk, any size


class Streamer(Protocol):
    """Stateful chunk transformer; ``flush`` returns what it still holds at the end."""

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    content_type: str | None = None  # None keeps the input's type
    apply: Callable[[bytes], bytes] | None = None
    streamer: Callable[[], Streamer] | None = None

    def run(self, data: bytes) -> bytes:
        if self.streamer is not None:
            s = self.streamer()
            return s.feed(data) + s.flush()
        assert self.apply is not None
        return self.apply(data)

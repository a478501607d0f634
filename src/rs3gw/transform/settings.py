"""The ``[transforms]`` config table: limits, cache size, and named chains ("access points").

```toml
[transforms]
max_image_bytes = 67108864      # larger objects answer TransformationInputTooLarge
[transforms.thumb]
chain = "resize:w=200,h=200,fit=cover|format:webp|quality:80"
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rs3gw.transform.spec import _NAME, parse_spec

MiB = 1 << 20


@dataclass(frozen=True)
class TransformSettings:
    max_image_bytes: int = 64 * MiB  # image steps refuse larger objects before reading them
    max_buffer_bytes: int = 64 * MiB  # JSON, video and custom Python steps likewise
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb threshold
    buffer_bytes: int = 8 * MiB  # streamable chains over objects up to this size run whole (cached, Range)
    cache_bytes: int = 32 * MiB  # in-memory LRU of results, per process; 0 disables it
    video_timeout: float = 120.0  # seconds one ffmpeg run may take
    max_concurrent: int = 4  # whole-object transformations buffered at once (memory bound), per process
    wasm_dir: str = ""  # directory of <name>.wasm plugins (wasm:<name>); empty: none
    wasm_fuel: int = 1_000_000_000  # wasmtime fuel (about one unit per instruction) per plugin run
    wasm_memory_bytes: int = 64 * MiB  # linear-memory cap per plugin run
    points: Mapping[str, str] = field(default_factory=dict)  # access point name -> chain

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["points"] = dict(self.points)
        return out


_INTS = (
    "max_image_bytes",
    "max_buffer_bytes",
    "max_pixels",
    "buffer_bytes",
    "cache_bytes",
    "max_concurrent",
    "wasm_fuel",
    "wasm_memory_bytes",
)


def _point(name: str, value: object) -> str:
    chain = value.get("chain") if isinstance(value, dict) else value
    if isinstance(value, dict) and set(value) - {"chain"}:
        raise ValueError(f"transforms.{name}: only 'chain' is allowed in an access point")
    if not isinstance(chain, str):
        raise ValueError(f'transforms.{name}: expected chain = "step|step..."')
    if not _NAME.fullmatch(name):
        raise ValueError(f"transforms.{name}: access point names are lower-case letters, digits, - and _")
    try:
        parse_spec(chain)  # syntax only: step names are checked against the catalog at start
    except Exception as e:
        raise ValueError(f"transforms.{name}: {e}") from None
    return chain


def parse_transforms_table(value: object) -> TransformSettings:
    """Validate ``[transforms]`` (or the JSON a worker process receives)."""
    if value is None:
        return TransformSettings()
    if isinstance(value, TransformSettings):
        return value
    if not isinstance(value, dict):
        raise ValueError("transforms: expected a table")
    out: dict[str, Any] = {}
    points: dict[str, str] = {}
    for key, v in value.items():
        if key in _INTS:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"transforms.{key}: expected a non-negative integer")
            out[key] = v
        elif key == "video_timeout":
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ValueError("transforms.video_timeout: expected a positive number of seconds")
            out[key] = float(v)
        elif key == "wasm_dir":
            if not isinstance(v, str):
                raise ValueError("transforms.wasm_dir: expected a directory path")
            out[key] = v
        elif key == "points" and isinstance(v, dict):  # the JSON hand-off form
            points.update({str(k): _point(str(k), c) for k, c in v.items()})
        elif isinstance(v, dict | str):  # [transforms.<name>] chain = "...", or <name> = "..."
            points[key] = _point(key, v)
        else:
            raise ValueError(
                f"transforms.{key}: unknown key (known: {', '.join(_INTS)}, video_timeout, wasm_dir, "
                "or a [transforms.<name>] table with chain = ...)"
            )
    return TransformSettings(**out, points=points)

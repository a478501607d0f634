"""Compiles a chain into stages and runs it: whole-object in a worker thread, or streamed.

Everything that can fail on the request (names, parameters, sizes) fails in ``plan`` or before
the first byte goes out; streamed stages cannot fail on their input, so a response is never cut.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from rs3gw import errors
from rs3gw.transform import compress, image, text, video, wasm
from rs3gw.transform.cache import Result, ResultCache
from rs3gw.transform.settings import TransformSettings
from rs3gw.transform.spec import Step, canonical, invalid, parse_spec
from rs3gw.transform.stage import BUFFER, IMAGE, STREAM, Stage, Streamer

BUILTIN = image.STEPS | text.STEPS | compress.STEPS | video.STEPS | wasm.STEPS
CustomFn = Callable[[bytes, dict[str, str]], bytes]


@dataclass(frozen=True)
class Plan:
    canonical: str
    stages: tuple[Stage, ...]

    @property
    def streamable(self) -> bool:
        return all(s.kind == STREAM for s in self.stages)


def too_large(message: str) -> errors.S3Error:
    return errors.error_class("TransformationInputTooLarge")(message)


class TransformService:
    """Built-in steps, custom Python steps registered at run time, access points and the cache."""

    def __init__(self, settings: TransformSettings | None = None) -> None:
        self.settings = settings or TransformSettings()
        self.cache = ResultCache(self.settings.cache_bytes)
        self._custom: dict[str, tuple[CustomFn, str | None]] = {}
        self.generation = 0  # bumps on every registration, so cached results of a replaced step go stale
        self._slots: asyncio.Semaphore | None = None

    def slot(self) -> asyncio.Semaphore:
        """Held while a whole object is read and transformed: memory is bounded by the slot count."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self.settings.max_concurrent))
        return self._slots

    def register(self, name: str, fn: CustomFn, content_type: str | None = None) -> None:
        """A custom step ``name`` (``name:k=v`` passes {"k": "v"}); it may not shadow a built-in."""
        steps = parse_spec(name)
        if len(steps) != 1 or steps[0].args or steps[0].name != name:
            raise ValueError(f"{name!r} is not a valid transformation name (lower-case, digits, - and _)")
        if name in BUILTIN:
            raise ValueError(f"{name!r} is a built-in transformation")
        self._custom[name] = (fn, content_type)
        self.generation += 1

    def names(self) -> list[str]:
        return sorted(BUILTIN | set(self._custom))

    def check_points(self) -> None:
        """Fail at start, not on the first GET, when a configured chain names an unknown step."""
        for name, chain in self.settings.points.items():
            try:
                self.plan(chain)
            except errors.S3Error as e:
                raise ValueError(f"transforms.{name}: {e.message}") from None

    def plan(self, spec: str) -> Plan:
        steps = parse_spec(spec, self.settings.points)
        stages: list[Stage] = []
        run: list[Step] = []
        for step in steps:
            if step.name in image.STEPS:
                run.append(step)
                continue
            if run:
                stages.append(image.compile_image(run, self.settings.max_pixels))
                run = []
            stages.append(self._compile(step))
        if run:
            stages.append(image.compile_image(run, self.settings.max_pixels))
        return Plan(canonical(steps), tuple(stages))

    def _compile(self, step: Step) -> Stage:
        if step.name in text.STEPS:
            return text.compile_text(step)
        if step.name in compress.STEPS:
            return compress.compile_compress(step)
        if step.name in video.STEPS:
            return video.compile_video(step, self.settings.video_timeout)
        if step.name in wasm.STEPS:
            st = self.settings
            return wasm.compile_wasm(step, st.wasm_dir, st.wasm_fuel, st.wasm_memory_bytes)
        custom = self._custom.get(step.name)
        if custom is None:
            raise invalid(f"unknown transformation {step.name!r} (known: {', '.join(self.names())})")
        fn, ctype = custom
        params = {k or "value": v for k, v in step.args}
        return Stage(step.name, BUFFER, ctype, apply=lambda d: _custom(step.name, fn, d, params))

    def check_size(self, plan: Plan, size: int) -> None:
        s = self.settings
        for stage in plan.stages:
            limit = {IMAGE: s.max_image_bytes, BUFFER: s.max_buffer_bytes}.get(stage.kind)
            if limit is not None and size > limit:
                raise too_large(
                    f"the object is {size} bytes; the {stage.name!r} transformation accepts at most {limit}"
                )

    def whole(self, plan: Plan, size: int) -> bool:
        """Run on the whole object (cacheable, Range applies) rather than streamed."""
        return not plan.streamable or size <= self.settings.buffer_bytes

    def etag(self, source_etag: str, plan: Plan) -> str:
        """The result's ETag: a function of the source's and of the chain, so caches key correctly."""
        h = hashlib.sha256(f"{source_etag}\0{plan.canonical}\0{self.generation}".encode())
        return h.hexdigest()[:32]

    def run(self, plan: Plan, data: bytes, content_type: str) -> Result:
        """Blocking: call it in a worker thread (``run_async``)."""
        for stage in plan.stages:
            data = stage.run(data)
            if stage.content_type is not None:
                content_type = stage.content_type
            elif stage.kind == IMAGE:
                content_type = image.image_content_type(data) or content_type
        return Result(data, content_type)

    async def run_async(self, plan: Plan, data: bytes, content_type: str) -> Result:
        return await asyncio.to_thread(self.run, plan, data, content_type)

    def content_type(self, plan: Plan, source: str) -> str:
        for stage in plan.stages:
            source = stage.content_type or source
        return source

    async def stream(self, plan: Plan, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Streamed stages over a body; chunk work runs in a worker thread (zlib and zstd drop the GIL)."""
        streamers = [s.streamer() for s in plan.stages if s.streamer is not None]
        try:
            async for chunk in body:
                out = await asyncio.to_thread(_feed, streamers, chunk)
                if out:
                    yield out
            tail = await asyncio.to_thread(_flush, streamers)
            if tail:
                yield tail
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()


def _feed(streamers: list[Streamer], data: bytes) -> bytes:
    for s in streamers:
        data = s.feed(data)
    return data


def _flush(streamers: list[Streamer]) -> bytes:
    data = b""
    for s in streamers:
        data = s.feed(data) + s.flush() if data else s.flush()
    return data


def _custom(name: str, fn: CustomFn, data: bytes, params: dict[str, str]) -> bytes:
    try:
        out = fn(data, params)
    except errors.S3Error:
        raise
    except Exception as e:
        raise invalid(f"custom transformation {name!r} failed: {type(e).__name__}: {e}") from None
    if not isinstance(out, bytes | bytearray | memoryview):
        raise invalid(f"custom transformation {name!r} returned {type(out).__name__}, not bytes")
    return bytes(out)

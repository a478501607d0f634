"""Protobuf model files (ONNX ``ModelProto``, TensorFlow ``SavedModel``) walked by wire format.

No generated classes and no protobuf dependency: fields are walked with ranged reads through a
small window cache, and tensor payloads (``raw_data``) are skipped by their length, so a GiB
model costs a few reads per tensor header. Unknown fields or wire types mean "not this format".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rs3gw.codecs.mlpickle import TensorInfo

ReadAt = Callable[[int, int], Awaitable[bytes]]
WINDOW = 16 * 1024
MAX_READS = 10_000  # with WINDOW: at most ~160 MiB read to walk one file
MAX_FIELDS = 2_000_000
ONNX_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25}
SAVEDMODEL_FIELDS = {1, 2}
ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64",
    15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2",
    20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
}  # fmt: skip


class BadProto(ValueError):
    pass


@dataclass
class ProtoModel:
    kind: str  # "onnx" | "savedmodel"
    version: str = ""
    producer: str = ""
    producer_version: str = ""
    tensors: list[TensorInfo] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


class Cursor:
    """Bytes of the object by position, fetched in windows; bounded in reads and fields."""

    def __init__(self, read: ReadAt, size: int) -> None:
        self.read, self.size = read, size
        self.start, self.buf = 0, b""
        self.reads = self.fields = 0

    async def get(self, pos: int, n: int) -> bytes:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise BadProto("past the end")
        if not (self.start <= pos and pos + n <= self.start + len(self.buf)):
            self.reads += 1
            if self.reads > MAX_READS:
                raise BadProto("too many reads")
            self.start, self.buf = pos, await self.read(pos, min(max(n, WINDOW), self.size - pos))
            if len(self.buf) < n:
                raise BadProto("short read")
        return self.buf[pos - self.start : pos - self.start + n]

    async def varint(self, pos: int) -> tuple[int, int]:
        value = shift = 0
        for i in range(10):
            b = (await self.get(pos + i, 1))[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, pos + i + 1
            shift += 7
        raise BadProto("varint too long")

    async def fields_in(self, start: int, end: int) -> list[tuple[int, int, int, int]]:
        """(field number, wire type, value-or-payload-start, payload length) for each field."""
        out: list[tuple[int, int, int, int]] = []
        pos = start
        while pos < end:
            self.fields += 1
            if self.fields > MAX_FIELDS:
                raise BadProto("too many fields")
            tag, pos = await self.varint(pos)
            num, wt = tag >> 3, tag & 7
            if num == 0:
                raise BadProto("field 0")
            if wt == 0:
                v, pos = await self.varint(pos)
                out.append((num, wt, v, 0))
            elif wt in (1, 5):
                n = 8 if wt == 1 else 4
                out.append((num, wt, pos, n))
                pos += n
            elif wt == 2:
                n, pos = await self.varint(pos)
                out.append((num, wt, pos, n))
                pos += n
            else:
                raise BadProto("group or bad wire type")
        if pos != end:
            raise BadProto("field overruns its message")
        return out

    async def text(self, pos: int, n: int, cap: int = 128) -> str:
        return (await self.get(pos, min(n, cap))).decode("utf-8", "replace")


async def parse_protobuf_model(read: ReadAt, size: int) -> ProtoModel:
    cur = Cursor(read, size)
    top = await cur.fields_in(0, size)
    nums = {f[0] for f in top}
    if not top or top[0][:2] != (1, 0):
        raise BadProto("no leading version field")
    if 7 in nums and nums <= ONNX_FIELDS:
        return await _onnx(cur, top)
    if 2 in nums and nums <= SAVEDMODEL_FIELDS:
        return await _savedmodel(cur, top)
    raise BadProto("not a known model message")


def _check(fields: list[tuple[int, int, int, int]], wire: dict[int, int]) -> None:
    for num, wt, _, _ in fields:
        if num in wire and wire[num] != wt:
            raise BadProto(f"field {num} has wire type {wt}")


async def _onnx(cur: Cursor, top: list[tuple[int, int, int, int]]) -> ProtoModel:
    _check(top, {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2})
    m = ProtoModel("onnx", version=str(top[0][2]))
    if not 1 <= top[0][2] <= 100:
        raise BadProto("implausible ir_version")
    graphs = 0
    for num, _, pos, n in top:
        if num == 2:
            m.producer = await cur.text(pos, n)
        elif num == 3:
            m.producer_version = await cur.text(pos, n)
        elif num == 7:
            graphs += 1
            await _onnx_graph(cur, pos, n, m)
        elif num == 8:
            sub = await cur.fields_in(pos, pos + n)
            domain = "".join([await cur.text(p, ln) for k, _, p, ln in sub if k == 1])
            version = next((v for k, w, v, _ in sub if k == 2 and w == 0), None)
            if not domain and version is not None:
                m.extra["opset"] = str(version)
    if graphs != 1:
        raise BadProto("ONNX needs one graph")
    return m


async def _onnx_graph(cur: Cursor, start: int, length: int, m: ProtoModel) -> None:
    fields = await cur.fields_in(start, start + length)
    _check(fields, {1: 2, 2: 2, 5: 2, 11: 2, 12: 2})
    nodes = inputs = outputs = 0
    for num, _, pos, n in fields:
        if num == 1:
            nodes += 1
        elif num == 11:
            inputs += 1
        elif num == 12:
            outputs += 1
        elif num == 5:
            m.tensors.append(await _onnx_tensor(cur, pos, n))
    m.extra.update(nodes=str(nodes), inputs=str(inputs), outputs=str(outputs))


async def _onnx_tensor(cur: Cursor, start: int, length: int) -> TensorInfo:
    dims: list[int] = []
    dtype, name = 0, ""
    for num, wt, pos, n in await cur.fields_in(start, start + length):
        if num == 1 and wt == 0:
            dims.append(pos)
        elif num == 1 and wt == 2:  # packed
            p = pos
            while p < pos + n:
                v, p = await cur.varint(p)
                dims.append(v)
        elif num == 2 and wt == 0:
            dtype = pos
        elif num == 8 and wt == 2:
            name = await cur.text(pos, n, 256)
    if dtype not in ONNX_DTYPES or any(d >= 1 << 62 for d in dims):
        raise BadProto("odd tensor")
    return TensorInfo(name, ONNX_DTYPES[dtype], tuple(dims))


async def _savedmodel(cur: Cursor, top: list[tuple[int, int, int, int]]) -> ProtoModel:
    _check(top, {1: 0, 2: 2})
    m = ProtoModel("savedmodel", version=str(top[0][2]))
    tags: list[str] = []
    signatures = 0
    for num, _, pos, n in top:
        if num != 2:
            continue
        meta_graph = await cur.fields_in(pos, pos + n)
        _check(meta_graph, {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2})
        if any(k > 8 for k, *_ in meta_graph):
            raise BadProto("not a MetaGraphDef")
        info = [f for f in meta_graph if f[0] == 1]
        if not info:
            raise BadProto("MetaGraphDef without meta_info_def")
        signatures += sum(1 for f in meta_graph if f[0] == 5)
        for k, w, p, ln in await cur.fields_in(info[0][2], info[0][2] + info[0][3]):
            if k == 4 and w == 2:
                tags.append(await cur.text(p, ln, 64))
            elif k == 5 and w == 2:
                m.producer_version = await cur.text(p, ln, 64)
    m.producer = "tensorflow"
    m.extra.update(tags=",".join(tags[:8]), signatures=str(signatures))
    return m

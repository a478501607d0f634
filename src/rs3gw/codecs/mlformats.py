"""Recognise ML model files by their content and read what they say about themselves.

Everything here parses bytes fetched through an async ``ReadAt`` (offset, length) so a multi-GiB
model is never buffered: safetensors needs its JSON header, zip formats their central directory
(at the end) and a few small members, protobuf formats a walk that skips tensor payloads.

Pickles (PyTorch's ``data.pkl`` and the legacy ``torch.save`` format) are only *disassembled* with
``pickletools.genops`` and replayed on a symbolic stack: no global is imported and nothing is
called, so a hostile pickle is inert. Anything malformed, truncated or over a bound is "not a model".
"""

from __future__ import annotations

import json
import pickletools
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rs3gw.codecs import mlproto
from rs3gw.codecs.mlpickle import TensorInfo, TorchPickle, parse_torch_pickle

ReadAt = Callable[[int, int], Awaitable[bytes]]

SNIFF_BYTES = 16
MAX_JSON_HEADER = 64 * 1024 * 1024  # safetensors caps its own header at 100 MB
MAX_MEMBER = 32 * 1024 * 1024  # data.pkl / config.json read whole, when no larger than this
MAX_ZIP_ENTRIES = 200_000
HDF5_SIG = b"\x89HDF\r\n\x1a\n"
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SAFETENSORS_DTYPES = {
    "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "U1",
}  # fmt: skip


class NotAModel(Exception):
    """Raised inside a parser; callers turn it into ``None``."""


@dataclass
class MlMetadata:
    """What a model file says about itself; ``parameter_count`` is None where the format hides it."""

    framework: str  # pytorch | tensorflow | onnx | safetensors | keras
    format: str  # pytorch-zip | pytorch-legacy | savedmodel | onnx | safetensors | keras-h5 | keras-zip
    format_version: str = ""
    framework_version: str = ""
    parameter_count: int | None = None
    tensors: list[TensorInfo] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "framework": self.framework,
            "format": self.format,
            "format_version": self.format_version,
            "framework_version": self.framework_version,
            "parameter_count": self.parameter_count,
            "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors],
            "extra": dict(self.extra),
        }


def candidate(head: bytes) -> bool:
    """Cheap test on an object's first bytes: could it be a model? False for almost all data."""
    if head.startswith((b"PK\x03\x04", HDF5_SIG)):
        return True
    if len(head) >= 10 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2..5
        return True
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length, then JSON
        n: int = struct.unpack("<Q", head[:8])[0]
        return 2 <= n <= MAX_JSON_HEADER
    return len(head) >= 2 and head[0] == 0x08 and 0 < head[1] < 0x80  # protobuf field 1, varint


async def detect_format(read: ReadAt, size: int) -> str | None:
    """The format name (``MlMetadata.format``) or None; a full parse, so it is trustworthy."""
    meta = await extract(read, size)
    return meta.format if meta else None


async def extract(read: ReadAt, size: int) -> MlMetadata | None:
    """Parse the object as each plausible format in turn; the first that parses wins."""
    if size < SNIFF_BYTES:
        return None
    head = await read(0, SNIFF_BYTES)
    if not candidate(head):
        return None
    try:
        if head.startswith(b"PK\x03\x04"):
            return await _zip_model(read, size)
        if head.startswith(HDF5_SIG):
            return await _hdf5_keras(read, size)
        if head[0] == 0x80:
            return await _legacy_torch(read, size)
        if head[8:9] == b"{":
            return await _safetensors(read, size)
        return _proto_meta(await mlproto.parse_protobuf_model(read, size))
    except (NotAModel, mlproto.BadProto, ValueError, KeyError, IndexError, TypeError, struct.error):
        return None
    except (zlib.error, RecursionError, UnicodeDecodeError, OverflowError):
        return None


def _proto_meta(p: mlproto.ProtoModel) -> MlMetadata:
    if p.kind == "onnx":
        tensors = sorted(p.tensors, key=lambda t: t.name)
        extra = {**p.extra, **({"producer": p.producer[:64]} if p.producer else {})}
        return MlMetadata(
            "onnx", "onnx", p.version, p.producer_version, sum(t.numel for t in tensors), tensors, extra
        )
    return MlMetadata("tensorflow", "savedmodel", p.version, p.producer_version, None, [], p.extra)


# -- safetensors -------------------------------------------------------------------------------
async def _safetensors(read: ReadAt, size: int) -> MlMetadata:
    (n,) = struct.unpack("<Q", await read(0, 8))
    if n > MAX_JSON_HEADER or 8 + n > size:
        raise NotAModel
    doc = json.loads(await read(8, n))
    if not isinstance(doc, dict):
        raise NotAModel
    data_len = size - 8 - n
    tensors: list[TensorInfo] = []
    extra: dict[str, str] = {}
    for name, spec in doc.items():
        if name == "__metadata__":
            if isinstance(spec, dict):
                extra.update({str(k): str(v) for k, v in list(spec.items())[:8]})
            continue
        dtype, shape, offs = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise NotAModel
        if not (isinstance(offs, list) and len(offs) == 2 and 0 <= offs[0] <= offs[1] <= data_len):
            raise NotAModel
        tensors.append(TensorInfo(str(name), dtype, tuple(shape)))
    tensors.sort(key=lambda t: t.name)
    return MlMetadata("safetensors", "safetensors", "", "", sum(t.numel for t in tensors), tensors, extra)


# -- zip archives: PyTorch and Keras v3 ----------------------------------------------------------
@dataclass(frozen=True)
class ZipEntry:
    name: str
    method: int
    csize: int
    usize: int
    offset: int


async def zip_entries(read: ReadAt, size: int) -> list[ZipEntry]:
    """The central directory, found from the end-of-central-directory record (zip64 aware)."""
    tail_len = min(size, 65536 + 22)
    tail = await read(size - tail_len, tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0:
        raise NotAModel
    _, _, _, _, count, cd_size, cd_off, _ = struct.unpack("<IHHHHIIH", tail[at : at + 22])
    if cd_off == 0xFFFFFFFF or count == 0xFFFF:
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0:
            raise NotAModel
        (z64_off,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        rec = await read(z64_off, 56)
        if rec[:4] != b"PK\x06\x06":
            raise NotAModel
        count, cd_size, cd_off = struct.unpack("<QQQ", rec[32:56])
    if count > MAX_ZIP_ENTRIES or cd_size > 16 * 1024 * 1024 or cd_off + cd_size > size:
        raise NotAModel
    cd = await read(cd_off, cd_size)
    out: list[ZipEntry] = []
    pos = 0
    for _ in range(count):
        if cd[pos : pos + 4] != b"PK\x01\x02":
            raise NotAModel
        method, _, _, _, csize, usize, nlen, xlen, clen = struct.unpack("<HHHIIIHHH", cd[pos + 10 : pos + 34])
        (off,) = struct.unpack("<I", cd[pos + 42 : pos + 46])
        name = cd[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
        extra = cd[pos + 46 + nlen : pos + 46 + nlen + xlen]
        csize, usize, off = _zip64_sizes(extra, csize, usize, off)
        out.append(ZipEntry(name, method, csize, usize, off))
        pos += 46 + nlen + xlen + clen
    return out


def _zip64_sizes(extra: bytes, csize: int, usize: int, off: int) -> tuple[int, int, int]:
    p = 0
    while p + 4 <= len(extra):
        tag, ln = struct.unpack("<HH", extra[p : p + 4])
        if tag == 1:
            vals = list(struct.unpack(f"<{ln // 8}Q", extra[p + 4 : p + 4 + (ln // 8) * 8]))
            if usize == 0xFFFFFFFF and vals:
                usize = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if off == 0xFFFFFFFF and vals:
                off = vals.pop(0)
        p += 4 + ln
    return csize, usize, off


async def zip_member(read: ReadAt, size: int, e: ZipEntry, limit: int = MAX_MEMBER) -> bytes:
    """One member's bytes (stored or deflated), refused when larger than ``limit``."""
    if e.usize > limit or e.csize > limit or e.offset + 30 > size:
        raise NotAModel
    local = await read(e.offset, 30)
    if local[:4] != b"PK\x03\x04":
        raise NotAModel
    nlen, xlen = struct.unpack("<HH", local[26:30])
    raw = await read(e.offset + 30 + nlen + xlen, e.csize)
    if len(raw) != e.csize:
        raise NotAModel
    if e.method == 0:
        return raw
    if e.method == 8:
        d = zlib.decompressobj(-15)
        out = d.decompress(raw, limit + 1)
        if len(out) > limit:
            raise NotAModel
        return out
    raise NotAModel


async def _zip_model(read: ReadAt, size: int) -> MlMetadata:
    entries = {e.name: e for e in await zip_entries(read, size)}
    pkl = next((n for n in entries if n.endswith("data.pkl") and n.count("/") == 1), None)
    if pkl is not None:
        root = pkl.rsplit("/", 1)[0]
        parsed = parse_torch_pickle(await zip_member(read, size, entries[pkl]))
        version = ""
        if (v := entries.get(f"{root}/version") or entries.get(f"{root}/.data/version")) is not None:
            version = (await zip_member(read, size, v, 64)).decode("ascii", "replace").strip()
        return _torch_meta(parsed, "pytorch-zip", version)
    if "config.json" in entries and ("metadata.json" in entries or "model.weights.h5" in entries):
        return await _keras_zip(read, size, entries)
    raise NotAModel


def _torch_meta(parsed: TorchPickle, fmt: str, version: str) -> MlMetadata:
    if not parsed.tensors:
        raise NotAModel  # a zip or pickle without tensors is not a checkpoint
    tensors = sorted(parsed.tensors, key=lambda t: t.name)
    return MlMetadata("pytorch", fmt, version, "", sum(t.numel for t in tensors), tensors)


async def _keras_zip(read: ReadAt, size: int, entries: dict[str, ZipEntry]) -> MlMetadata:
    config = json.loads(await zip_member(read, size, entries["config.json"]))
    if not isinstance(config, dict) or "class_name" not in config:
        raise NotAModel
    meta = MlMetadata("keras", "keras-zip")
    if "metadata.json" in entries:
        md = json.loads(await zip_member(read, size, entries["metadata.json"], 1 << 20))
        if isinstance(md, dict):
            meta.framework_version = str(md.get("keras_version", ""))
    meta.extra["class"] = str(config.get("class_name"))[:64]
    layers = (config.get("config") or {}).get("layers") if isinstance(config.get("config"), dict) else None
    if isinstance(layers, list):
        meta.extra["layers"] = str(len(layers))
    return meta


# -- HDF5 (legacy Keras .h5) --------------------------------------------------------------------
async def _hdf5_keras(read: ReadAt, size: int) -> MlMetadata:
    """Keras writes ``keras_version``/``model_config`` attributes on the root group, whose object
    header sits near the file's start: their names in the first MiB identify a Keras model."""
    head = await read(0, min(size, 1 << 20))
    if b"keras_version" not in head and b"model_config" not in head:
        raise NotAModel
    meta = MlMetadata("keras", "keras-h5", format_version=str(head[8]))  # superblock version
    if b"backend" in head:
        meta.extra["attrs"] = ",".join(
            a for a in ("keras_version", "backend", "model_config", "training_config") if a.encode() in head
        )
    return meta


# -- legacy torch.save (a sequence of pickles) ---------------------------------------------------
async def _legacy_torch(read: ReadAt, size: int) -> MlMetadata:
    """``torch.save(..., _use_new_zipfile_serialization=False)``: magic, protocol, sys_info, then
    the object pickle. Only the magic pickle identifies it; the rest is parsed symbolically."""
    head = await read(0, min(size, 4096))  # magic, protocol and sys_info pickles are tiny
    pos = 0
    values: list[object] = []
    for _ in range(3):
        value, pos = _small_pickle_value(head, pos)
        values.append(value)
        if values[0] != TORCH_LEGACY_MAGIC:
            raise NotAModel  # any other pickle stops here, after one small read
    data = await read(0, min(size, MAX_MEMBER))
    parsed = parse_torch_pickle(data[pos:])
    return _torch_meta(parsed, "pytorch-legacy", str(values[1]))


def _small_pickle_value(data: bytes, pos: int) -> tuple[object, int]:
    """The value of a tiny pickle of an int, and where the next pickle begins (ints only)."""
    value: object = None
    for op, arg, at in pickletools.genops(bytes(data[pos : pos + 4096])):
        if op.name in ("LONG1", "LONG4", "BININT", "BININT1", "BININT2", "INT", "LONG"):
            value = arg
        elif op.name == "STOP":
            return value, pos + (at or 0) + 1
    raise NotAModel

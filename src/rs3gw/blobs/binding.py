"""What a blob's bytes are, in the form the encryption layer binds them to (its chunks' AAD).

A binding is a canonical, unambiguous byte string (a tag, then length-prefixed fields) naming
the identity of the data being written:

- ``object``: bucket, key, version id ("null" outside versioning) of a single-part object;
- ``part``: bucket, key, upload id, part number of a multipart upload's part (a completed
  object keeps its parts' blobs, so they stay bound to the upload they were sent to);
- ``dedup-chunk``: the SHA-256 of a deduplicated chunk. Dedup chunks are shared by every object
  that contains the same bytes, so they cannot be bound to one object's key; binding them to their
  content hash is exact (the bytes *are* that hash), and the object's own identity is still bound
  in its manifest blob.

The encryption layer stores SHA-256 of the binding in the blob header and folds it into every
chunk's AAD (see ``blobs.encrypted``). Readers that know what a blob should be (the engine, from
the object's metadata) put the expected bindings in ``EXPECTED`` around each step of a body; the
blob layer has no place for them in its ``read`` signature, as with the SSE-C key.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Mapping

_TAG = b"rs3gw-binding-v1"

#: blob id -> the binding the engine expects that blob to carry, for the read in progress.
EXPECTED: contextvars.ContextVar[Mapping[str, bytes] | None] = contextvars.ContextVar(
    "rs3gw_expected_bindings", default=None
)


def _encode(kind: str, *fields: str | int) -> bytes:
    out = bytearray(_TAG)
    for f in (kind, *fields):
        raw = str(f).encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def object_binding(bucket: str, key: str, version_id: str) -> bytes:
    return _encode("object", bucket, key, version_id)


def part_binding(bucket: str, key: str, upload_id: str, part_number: int) -> bytes:
    return _encode("part", bucket, key, upload_id, part_number)


def dedup_chunk_binding(sha256: bytes) -> bytes:
    return _encode("dedup-chunk", sha256.hex())


def digest(binding: bytes) -> bytes:
    """The 32 bytes a blob header stores and its chunks' AAD carries (b"" binds nothing but the blob id)."""
    return hashlib.sha256(binding).digest()

"""An independent writer of the version 1 encrypted-blob format (before chunks were bound to bucket,
key and version): tests use it to prove that blobs stored by older releases still read back.

Written from the format's specification, not with the production code, so a change to the reader
that breaks old blobs cannot hide behind a matching change here. Checked once against the
release that wrote version 1 (git history of src/rs3gw/blobs/encrypted.py).
"""

from __future__ import annotations

import os
import struct
import zlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rs3gw.blobs.keys import KeyProvider

MAGIC = b"\x93RS3GWE\x01"
V1_HEADER = 24 + 2 * 224


def seal_v1(
    keys: KeyProvider, blob_id: str, plain: bytes, key_name: str = "aws/s3", chunk: int = 65536
) -> bytes:
    """The bytes a version 1 writer stored for ``plain`` as blob ``blob_id`` (AES-256-GCM)."""
    cipher = 1
    dk = os.urandom(32)
    ref, wrapped = keys.wrap(key_name, dk, b"rs3gw-dek\x00" + blob_id.encode() + bytes([cipher]))
    nonce_prefix = os.urandom(4)
    prefix = struct.pack("<8sBBHI4s4x", MAGIC, 1, cipher, 0, chunk, nonce_prefix)
    slot = struct.pack("<IB128sB84s2x", 1, len(ref), ref.encode(), len(wrapped), wrapped)
    out = bytearray(prefix + slot + struct.pack("<I", zlib.crc32(slot)) + bytes(224))
    assert len(out) == V1_HEADER
    pieces = [plain[i : i + chunk] for i in range(0, len(plain), chunk)] or [b""]
    aead = AESGCM(dk)
    for i, piece in enumerate(pieces):
        aad = prefix + blob_id.encode() + struct.pack(">QB", i, i == len(pieces) - 1)
        out += aead.encrypt(nonce_prefix + i.to_bytes(8, "big"), piece, aad)
    return bytes(out)

"""The engine: S3 semantics over a metadata store and a blob store (see ``core`` and ``multipart``)."""

from rs3gw.engine.multipart import Engine

__all__ = ["Engine"]

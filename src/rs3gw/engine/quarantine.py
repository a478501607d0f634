"""Quarantine: an object version whose stored bytes failed their checksums is never served again.

The scrubber marks the version in ``ObjectMeta.system``; reads (GET, copy sources) then answer
``InvalidObjectState`` (403), the error S3 gives for an object whose state forbids reading it (an
archived GLACIER object). It is not retryable, unlike 500/503, so SDKs do not loop on it; HEAD still
answers so operators can see the object and its ``x-amz-meta``. Overwriting or deleting the
version clears it, and so does a scrub with a repair source (``[scrub] heal_backup``, ``heal run
--heal-backup``) that holds a good copy of the version: it rewrites the data (see ``repair``).
"""

from __future__ import annotations

from rs3gw import errors
from rs3gw.model import ObjectVersion

QUARANTINE_KEY = "quarantined"  # value: why (the scrubber's finding)
QUARANTINE_TIME_KEY = "quarantined-at"  # value: epoch seconds, as text


def is_quarantined(obj: ObjectVersion) -> bool:
    return QUARANTINE_KEY in obj.meta.system


def check_readable(obj: ObjectVersion) -> None:
    """Refuse to serve the bytes of a quarantined version."""
    if is_quarantined(obj):
        raise errors.error_class("InvalidObjectState")(
            "The object's stored data failed its integrity check and is quarantined; "
            "overwrite or delete it, or restore it from a backup.",
        )

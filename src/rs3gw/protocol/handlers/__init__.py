"""The handler table: one async function per S3 operation, keyed by the AWS operation name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers import buckets, listing, multipart, objects
from rs3gw.protocol.response import Response

Handler = Callable[[Ctx], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "GetBucketVersioning": buckets.get_bucket_versioning,
    "PutBucketVersioning": buckets.put_bucket_versioning,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "CopyObject": objects.copy_object,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "ListObjectVersions": listing.list_object_versions,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
}

IMPLEMENTED = frozenset(HANDLERS)

# Operations whose bucket may not exist yet or may belong to someone else by design.
PUBLIC_BUCKET_OPS = frozenset({"CreateBucket"})

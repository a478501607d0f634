"""The handler table: one async function per S3 operation, keyed by the AWS operation name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rs3gw.engine import Engine
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers import (
    access,
    attributes,
    bucket_probes,
    buckets,
    cors,
    encryption,
    lifecycle,
    listing,
    multipart,
    object_lock,
    objects,
    post_object,
    restore,
    select,
    tagging,
)
from rs3gw.protocol.request import Request
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
    "PostObject": post_object.post_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "CopyObject": objects.copy_object,
    "GetObjectAttributes": attributes.get_object_attributes,
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
    "SelectObjectContent": select.select_object_content,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    "PutBucketEncryption": encryption.put_bucket_encryption,
    "GetBucketEncryption": encryption.get_bucket_encryption,
    "DeleteBucketEncryption": encryption.delete_bucket_encryption,
    "PutObjectLockConfiguration": object_lock.put_object_lock_configuration,
    "GetObjectLockConfiguration": object_lock.get_object_lock_configuration,
    "PutObjectRetention": object_lock.put_object_retention,
    "GetObjectRetention": object_lock.get_object_retention,
    "PutObjectLegalHold": object_lock.put_object_legal_hold,
    "GetObjectLegalHold": object_lock.get_object_legal_hold,
    "PutBucketLifecycleConfiguration": lifecycle.put_bucket_lifecycle_configuration,
    "GetBucketLifecycleConfiguration": lifecycle.get_bucket_lifecycle_configuration,
    "DeleteBucketLifecycle": lifecycle.delete_bucket_lifecycle,
    "PutBucketPolicy": access.put_bucket_policy,
    "GetBucketPolicy": access.get_bucket_policy,
    "DeleteBucketPolicy": access.delete_bucket_policy,
    "GetBucketPolicyStatus": access.get_bucket_policy_status,
    "GetBucketAcl": access.get_bucket_acl,
    "PutBucketAcl": access.put_bucket_acl,
    "GetObjectAcl": access.get_object_acl,
    "PutObjectAcl": access.put_object_acl,
    "RestoreObject": restore.restore_object,
    "PutPublicAccessBlock": access.put_public_access_block,
    "GetPublicAccessBlock": access.get_public_access_block,
    "DeletePublicAccessBlock": access.delete_public_access_block,
    # Bucket sub-resources answered with rs3gw's real behaviour (bucket_probes).
    "GetBucketAccelerateConfiguration": bucket_probes.get_bucket_accelerate_configuration,
    "PutBucketAccelerateConfiguration": bucket_probes.put_bucket_accelerate_configuration,
    "GetBucketRequestPayment": bucket_probes.get_bucket_request_payment,
    "PutBucketRequestPayment": bucket_probes.put_bucket_request_payment,
    "GetBucketLogging": bucket_probes.get_bucket_logging,
    "PutBucketLogging": bucket_probes.put_bucket_logging,
    "GetBucketWebsite": bucket_probes.get_bucket_website,
    "PutBucketWebsite": bucket_probes.put_bucket_website,
    "DeleteBucketWebsite": bucket_probes.delete_bucket_website,
    "GetBucketReplication": bucket_probes.get_bucket_replication,
    "PutBucketReplication": bucket_probes.put_bucket_replication,
    "DeleteBucketReplication": bucket_probes.delete_bucket_replication,
    "GetBucketNotificationConfiguration": bucket_probes.get_bucket_notification_configuration,
    "PutBucketNotificationConfiguration": bucket_probes.put_bucket_notification_configuration,
    "GetBucketOwnershipControls": bucket_probes.get_bucket_ownership_controls,
    "PutBucketOwnershipControls": bucket_probes.put_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": bucket_probes.delete_bucket_ownership_controls,
    "ListBucketAnalyticsConfigurations": bucket_probes.list_bucket_analytics_configurations,
    "GetBucketAnalyticsConfiguration": bucket_probes.get_bucket_analytics_configuration,
    "PutBucketAnalyticsConfiguration": bucket_probes.put_bucket_analytics_configuration,
    "DeleteBucketAnalyticsConfiguration": bucket_probes.delete_bucket_analytics_configuration,
    "ListBucketMetricsConfigurations": bucket_probes.list_bucket_metrics_configurations,
    "GetBucketMetricsConfiguration": bucket_probes.get_bucket_metrics_configuration,
    "PutBucketMetricsConfiguration": bucket_probes.put_bucket_metrics_configuration,
    "DeleteBucketMetricsConfiguration": bucket_probes.delete_bucket_metrics_configuration,
    "ListBucketInventoryConfigurations": bucket_probes.list_bucket_inventory_configurations,
    "GetBucketInventoryConfiguration": bucket_probes.get_bucket_inventory_configuration,
    "PutBucketInventoryConfiguration": bucket_probes.put_bucket_inventory_configuration,
    "DeleteBucketInventoryConfiguration": bucket_probes.delete_bucket_inventory_configuration,
    "ListBucketIntelligentTieringConfigurations": bucket_probes.list_bucket_intelligent_tiering_configurations,
    "GetBucketIntelligentTieringConfiguration": bucket_probes.get_bucket_intelligent_tiering_configuration,
    "PutBucketIntelligentTieringConfiguration": bucket_probes.put_bucket_intelligent_tiering_configuration,
    "DeleteBucketIntelligentTieringConfiguration": bucket_probes.delete_bucket_intelligent_tiering_configuration,
}

# Operations answered before (and without) authentication: a CORS preflight carries no signature.
UNSIGNED_HANDLERS: dict[str, Callable[[Engine, Request], Awaitable[Response]]] = {
    "PreflightRequest": cors.preflight_request,
}
add_cors_headers = cors.add_cors_headers

IMPLEMENTED = frozenset(HANDLERS) | frozenset(UNSIGNED_HANDLERS)

# Operations whose bucket may not exist yet or may belong to someone else by design.
PUBLIC_BUCKET_OPS = frozenset({"CreateBucket"})

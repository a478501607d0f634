"""Bucket sub-resources that clients read when they inspect a bucket, answered with what rs3gw
really does.

Terraform (reading an ``aws_s3_bucket``), s3cmd ``info`` and console-like tools read acceleration,
request payment, logging, website, replication, notifications, ownership controls and the
analytics / metrics / inventory / Intelligent-Tiering lists. rs3gw offers none of these features,
so a read reports the state a bucket really has (never accelerated, the owner pays, no logging,
no website, no replication, no notifications, no such configurations). A write that keeps that
state is accepted, because it is true; a write that asks for the feature is refused with 501
NotImplemented instead of being stored and silently ignored.

Object ownership is the one setting rs3gw has: ObjectWriter (an object written by another user is
owned by that writer and its ACL is honoured, see README "Access control"). AWS reports a bucket
that never declared ownership controls with OwnershipControlsNotFoundError, and such a bucket
behaves as ObjectWriter; so does every rs3gw bucket. A PutBucketOwnershipControls naming
ObjectWriter records only that the owner declared it, so GET reports back what was put (as
Terraform's ``aws_s3_bucket_ownership_controls`` reads it) and DELETE forgets the declaration;
the behaviour is ObjectWriter in all three states. Transfer Acceleration is handled the same way:
never enabled, so a PUT of ``Suspended`` is true; AWS then reports ``Status: Suspended`` where a
bucket that never had a PUT reports no Status, and Terraform's
``aws_s3_bucket_accelerate_configuration`` sees endless drift unless GET says what was put.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

from rs3gw import errors
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import _local, _parse, _text
from rs3gw.protocol.xml_write import XmlBuilder

BODY_LIMIT = 64 * 1024
# The bucket-config row that records a declared ObjectWriter ownership control (see the docstring).
OWNERSHIP_CONFIG = "ownership-controls"
OBJECT_WRITER = "ObjectWriter"
# The bucket-config row that records a PUT of Status=Suspended (acceleration stays off either way).
ACCELERATE_CONFIG = "accelerate"
SUSPENDED = "Suspended"
_NOTIFICATION_TARGETS = frozenset(
    {"TopicConfiguration", "QueueConfiguration", "CloudFunctionConfiguration", "EventBridgeConfiguration"}
)
_OWNERSHIP_VALUES = frozenset({"BucketOwnerPreferred", OBJECT_WRITER, "BucketOwnerEnforced"})


async def _require_bucket(ctx: Ctx) -> None:
    """Authorization lets a missing bucket through so that the handler answers NoSuchBucket."""
    await ctx.engine.get_bucket(ctx.bucket, ctx.known_bucket())


async def _read_config(ctx: Ctx, root: str) -> ET.Element:
    """The request's configuration document, after the bucket is known to exist; reading the
    body even for a refused write keeps the connection usable for the client's next request."""
    await _require_bucket(ctx)
    return _parse(await ctx.read_body(BODY_LIMIT), root)


def _child_names(elem: ET.Element) -> set[str]:
    return {_local(c.tag) for c in elem}


def _only_children(elem: ET.Element, allowed: frozenset[str] | set[str]) -> set[str]:
    """The element's child names; MalformedXML for one the schema does not have."""
    names = _child_names(elem)
    if not names <= allowed:
        raise errors.MalformedXML()
    return names


def _not_implemented(feature: str) -> errors.S3Error:
    return errors.NotImplementedError_(f"{feature} is not implemented by rs3gw")


# --- Transfer Acceleration: never enabled ------------------------------------------------------


async def get_bucket_accelerate_configuration(ctx: Ctx) -> Response:
    """No Status (never enabled, AWS's answer for such a bucket), or Suspended once put."""
    await _require_bucket(ctx)
    declared = await ctx.engine.get_bucket_config(ctx.bucket, ACCELERATE_CONFIG)
    x = XmlBuilder("AccelerateConfiguration").elem("Status", SUSPENDED if declared else None)
    return xml_response(x)


async def put_bucket_accelerate_configuration(ctx: Ctx) -> Response:
    """Suspended is what every rs3gw bucket is, so it is accepted (and reported back by GET);
    Enabled would promise an accelerated endpoint rs3gw does not have."""
    root = await _read_config(ctx, "AccelerateConfiguration")
    _only_children(root, {"Status"})
    status = (_text(root, "Status") or "").strip()
    if status == "Enabled":
        raise _not_implemented("Transfer Acceleration")
    if status != SUSPENDED:
        raise errors.MalformedXML()
    await ctx.engine.put_bucket_config(ctx.bucket, ACCELERATE_CONFIG, SUSPENDED)
    return Response(200)


# --- Requester Pays: the bucket owner always pays ----------------------------------------------


async def get_bucket_request_payment(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    x = XmlBuilder("RequestPaymentConfiguration").elem("Payer", "BucketOwner")
    return xml_response(x)


async def put_bucket_request_payment(ctx: Ctx) -> Response:
    """BucketOwner is rs3gw's only payer: accepted as a no-op; Requester Pays is refused."""
    root = await _read_config(ctx, "RequestPaymentConfiguration")
    _only_children(root, {"Payer"})
    payer = (_text(root, "Payer") or "").strip()
    if payer == "Requester":
        raise _not_implemented("Requester Pays")
    if payer != "BucketOwner":
        raise errors.MalformedXML()
    return Response(200)


# --- Server access logging: off (rs3gw's audit log is its own, see README "Audit log") ---------


async def get_bucket_logging(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    return xml_response(XmlBuilder("BucketLoggingStatus"))


async def put_bucket_logging(ctx: Ctx) -> Response:
    """An empty BucketLoggingStatus (logging off) is the bucket's state; LoggingEnabled is refused."""
    root = await _read_config(ctx, "BucketLoggingStatus")
    if _only_children(root, {"LoggingEnabled"}):
        raise _not_implemented("Server access logging to a target bucket")
    return Response(200)


# --- Static website hosting: none -------------------------------------------------------------


async def get_bucket_website(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    raise errors.NoSuchWebsiteConfiguration(BucketName=ctx.bucket)


async def put_bucket_website(ctx: Ctx) -> Response:
    await _read_config(ctx, "WebsiteConfiguration")
    raise _not_implemented("Static website hosting")


async def delete_bucket_website(ctx: Ctx) -> Response:
    """Nothing to delete: the bucket has no website configuration, as after a delete on AWS."""
    await _require_bucket(ctx)
    return Response(204)


# --- Replication: none ------------------------------------------------------------------------


async def get_bucket_replication(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    raise errors.ReplicationConfigurationNotFoundError(BucketName=ctx.bucket)


async def put_bucket_replication(ctx: Ctx) -> Response:
    await _read_config(ctx, "ReplicationConfiguration")
    raise _not_implemented("Bucket replication")


async def delete_bucket_replication(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    return Response(204)


# --- Event notifications: none ----------------------------------------------------------------


async def get_bucket_notification_configuration(ctx: Ctx) -> Response:
    """Empty: rs3gw sends no event notifications (the deprecated GET ?notification is this route)."""
    await _require_bucket(ctx)
    return xml_response(XmlBuilder("NotificationConfiguration"))


async def put_bucket_notification_configuration(ctx: Ctx) -> Response:
    """An empty configuration turns notifications off, which they are; any target is refused."""
    root = await _read_config(ctx, "NotificationConfiguration")
    if _only_children(root, _NOTIFICATION_TARGETS):
        raise _not_implemented("Bucket event notifications")
    return Response(200)


# --- Object Ownership: ObjectWriter -----------------------------------------------------------


async def get_bucket_ownership_controls(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    if await ctx.engine.get_bucket_config(ctx.bucket, OWNERSHIP_CONFIG) is None:
        raise errors.OwnershipControlsNotFoundError(BucketName=ctx.bucket)
    x = XmlBuilder("OwnershipControls").open("Rule").elem("ObjectOwnership", OBJECT_WRITER).close()
    return xml_response(x)


async def put_bucket_ownership_controls(ctx: Ctx) -> Response:
    """ObjectWriter is how rs3gw treats every object, so declaring it is true; the settings that
    would hand objects to the bucket owner or disable ACLs are refused."""
    root = await _read_config(ctx, "OwnershipControls")
    _only_children(root, {"Rule"})
    rules = list(root)
    if len(rules) != 1:  # AWS: exactly one rule
        raise errors.MalformedXML()
    _only_children(rules[0], {"ObjectOwnership"})
    ownership = (_text(rules[0], "ObjectOwnership") or "").strip()
    if ownership not in _OWNERSHIP_VALUES:
        raise errors.MalformedXML()
    if ownership != OBJECT_WRITER:
        raise _not_implemented(f"Object Ownership {ownership}")
    await ctx.engine.put_bucket_config(ctx.bucket, OWNERSHIP_CONFIG, OBJECT_WRITER)
    return Response(200)


async def delete_bucket_ownership_controls(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    await ctx.engine.put_bucket_config(ctx.bucket, OWNERSHIP_CONFIG, None)
    return Response(204)


# --- Analytics, metrics, inventory and Intelligent-Tiering configurations: none ---------------


async def _empty_list(ctx: Ctx, root: str) -> Response:
    """No configurations, one page; a continuation token is echoed as the model defines."""
    await _require_bucket(ctx)
    x = XmlBuilder(root).elem("IsTruncated", False).elem("ContinuationToken", ctx.q("continuation-token"))
    return xml_response(x)


async def _no_configuration(ctx: Ctx) -> Response:
    await _require_bucket(ctx)
    raise errors.NoSuchConfiguration(BucketName=ctx.bucket)


async def _refuse_configuration(ctx: Ctx, root: str, feature: str) -> Response:
    await _read_config(ctx, root)
    raise _not_implemented(feature)


async def list_bucket_analytics_configurations(ctx: Ctx) -> Response:
    return await _empty_list(ctx, "ListBucketAnalyticsConfigurationsResult")


async def get_bucket_analytics_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def put_bucket_analytics_configuration(ctx: Ctx) -> Response:
    return await _refuse_configuration(ctx, "AnalyticsConfiguration", "Storage Class Analysis")


async def delete_bucket_analytics_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def list_bucket_metrics_configurations(ctx: Ctx) -> Response:
    return await _empty_list(ctx, "ListMetricsConfigurationsResult")


async def get_bucket_metrics_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def put_bucket_metrics_configuration(ctx: Ctx) -> Response:
    return await _refuse_configuration(ctx, "MetricsConfiguration", "CloudWatch request metrics")


async def delete_bucket_metrics_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def list_bucket_inventory_configurations(ctx: Ctx) -> Response:
    return await _empty_list(ctx, "ListInventoryConfigurationsResult")


async def get_bucket_inventory_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def put_bucket_inventory_configuration(ctx: Ctx) -> Response:
    return await _refuse_configuration(ctx, "InventoryConfiguration", "S3 Inventory")


async def delete_bucket_inventory_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def list_bucket_intelligent_tiering_configurations(ctx: Ctx) -> Response:
    return await _empty_list(ctx, "ListIntelligentTieringConfigurationsResult")


async def get_bucket_intelligent_tiering_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


async def put_bucket_intelligent_tiering_configuration(ctx: Ctx) -> Response:
    return await _refuse_configuration(ctx, "IntelligentTieringConfiguration", "S3 Intelligent-Tiering")


async def delete_bucket_intelligent_tiering_configuration(ctx: Ctx) -> Response:
    return await _no_configuration(ctx)


# --- What each handler above reports, for docs/s3-compatibility.md ----------------------------

# One short phrase per handler: the real state it answers with, and which write answers 501.
# scripts/gen_compat_doc.py gives these operations their own status (neither "implemented" nor
# "not implemented"), and refuses to run, as tests/unit/test_compat_doc.py checks, when a handler
# of this module that the handler table routes has no phrase here or a phrase names no routed
# handler, so a new probe cannot be documented as fully implemented by accident.
REAL_STATE: dict[Callable[[Ctx], Awaitable[Response]], str] = {
    get_bucket_accelerate_configuration: "never accelerated (no Status, or Suspended once put)",
    put_bucket_accelerate_configuration: "Suspended accepted; Enabled answers 501",
    get_bucket_request_payment: "the bucket owner pays (Payer BucketOwner)",
    put_bucket_request_payment: "BucketOwner accepted; Requester answers 501",
    get_bucket_logging: "no server access logging (empty BucketLoggingStatus)",
    put_bucket_logging: "logging off accepted; LoggingEnabled answers 501",
    get_bucket_website: "no website (NoSuchWebsiteConfiguration)",
    put_bucket_website: "no static website hosting; any configuration answers 501",
    delete_bucket_website: "no website, nothing to delete (204)",
    get_bucket_replication: "no replication (ReplicationConfigurationNotFoundError)",
    put_bucket_replication: "no replication; any configuration answers 501",
    delete_bucket_replication: "no replication, nothing to delete (204)",
    get_bucket_notification_configuration: "no event notifications (empty configuration)",
    put_bucket_notification_configuration: "empty configuration accepted; any target answers 501",
    get_bucket_ownership_controls: "ObjectWriter once declared, else OwnershipControlsNotFoundError",
    put_bucket_ownership_controls: "ObjectWriter accepted; BucketOwnerPreferred, BucketOwnerEnforced answer 501",
    delete_bucket_ownership_controls: "forgets the declaration; objects stay ObjectWriter",
    list_bucket_analytics_configurations: "no analytics configurations (empty list)",
    get_bucket_analytics_configuration: "none (NoSuchConfiguration)",
    put_bucket_analytics_configuration: "no Storage Class Analysis; any configuration answers 501",
    delete_bucket_analytics_configuration: "none to delete (NoSuchConfiguration)",
    list_bucket_metrics_configurations: "no metrics configurations (empty list)",
    get_bucket_metrics_configuration: "none (NoSuchConfiguration)",
    put_bucket_metrics_configuration: "no CloudWatch request metrics; any configuration answers 501",
    delete_bucket_metrics_configuration: "none to delete (NoSuchConfiguration)",
    list_bucket_inventory_configurations: "no inventory configurations (empty list)",
    get_bucket_inventory_configuration: "none (NoSuchConfiguration)",
    put_bucket_inventory_configuration: "no S3 Inventory; any configuration answers 501",
    delete_bucket_inventory_configuration: "none to delete (NoSuchConfiguration)",
    list_bucket_intelligent_tiering_configurations: "no Intelligent-Tiering configurations (empty list)",
    get_bucket_intelligent_tiering_configuration: "none (NoSuchConfiguration)",
    put_bucket_intelligent_tiering_configuration: "no S3 Intelligent-Tiering; any configuration answers 501",
    delete_bucket_intelligent_tiering_configuration: "none to delete (NoSuchConfiguration)",
}

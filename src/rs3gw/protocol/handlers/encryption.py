"""Server-side encryption on the wire: the SSE request headers, the headers S3 answers with, and
the bucket default encryption operations (Put/Get/DeleteBucketEncryption)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from rs3gw import errors
from rs3gw.blobs.encrypted import key_md5
from rs3gw.engine import sse
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_bucket_encryption
from rs3gw.protocol.xml_write import XmlBuilder

SSE = "x-amz-server-side-encryption"
KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
BODY_LIMIT = 64 * 1024


def _customer_key(headers: Mapping[str, str], prefix: str) -> bytes | None:
    """The SSE-C key of ``prefix``-named headers, with its algorithm and MD5 checked."""
    alg, key, md5 = (headers.get(prefix + n) for n in ("algorithm", "key", "key-md5"))
    if alg is None and key is None and md5 is None:
        return None
    if alg is None:
        raise errors.InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid "
            "encryption algorithm.",
            ArgumentName=prefix + "algorithm",
            ArgumentValue="null",
        )
    if alg != "AES256":
        raise errors.error_class("InvalidEncryptionAlgorithmError")(
            "The Encryption request you specified is not valid. Supported value: AES256.",
            ArgumentName=prefix + "algorithm",
            ArgumentValue=alg,
        )
    if key is None:
        raise errors.InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an "
            "appropriate secret key.",
            ArgumentName=prefix + "key",
            ArgumentValue="null",
        )
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise errors.InvalidArgument(
            "The secret key was invalid for the specified algorithm.",
            ArgumentName=prefix + "key",
            ArgumentValue="null",
        )
    if md5 is None:
        raise errors.InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the "
            "client calculated MD5 of the secret key.",
            ArgumentName=prefix + "key-MD5",
            ArgumentValue="null",
        )
    if md5 != key_md5(raw):
        raise errors.InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=prefix + "key-MD5",
            ArgumentValue=md5,
        )
    return raw


def _secure_enough(ctx: Ctx, key: bytes | None) -> bytes | None:
    """A customer key crossed the wire in a header: AWS refuses it without TLS, and so do we unless
    ``[encryption] sse_c_over_http`` says a TLS proxy sits in front (or it is a test harness)."""
    if key is not None and ctx.req.scheme != "https" and not ctx.engine.sse_c_over_http:
        raise errors.InvalidRequest(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a "
            "secure connection."
        )
    return key


def request_sse(ctx: Ctx, server_side: bool = True) -> sse.SseRequest:
    """The request's own SSE headers; ``server_side`` False (reads, parts) allows only SSE-C."""
    h = ctx.req.headers
    alg, kms_key = h.get(SSE), h.get(KMS_KEY)
    customer = _secure_enough(ctx, _customer_key(h, CUSTOMER))
    if not server_side and alg is not None:
        raise errors.InvalidArgument(
            "x-amz-server-side-encryption header is not supported for this operation.",
            ArgumentName=SSE,
            ArgumentValue=alg,
        )
    if alg is not None and alg not in (sse.AES256, sse.KMS):
        raise errors.InvalidArgument(
            "The encryption method specified is not supported", ArgumentName=SSE, ArgumentValue=alg
        )
    if alg is not None and customer is not None:
        raise errors.InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method "
            "specified",
            ArgumentName=SSE,
            ArgumentValue=alg,
        )
    if kms_key is not None:
        if alg != sse.KMS:
            raise errors.InvalidArgument(
                "Server Side Encryption with AWS KMS managed key requires HTTP header "
                "x-amz-server-side-encryption : aws:kms",
                ArgumentName=KMS_KEY,
                ArgumentValue=kms_key,
            )
        sse.check_kms_key_id(kms_key)
    return sse.SseRequest(alg, kms_key, customer)


def copy_source_sse(ctx: Ctx) -> sse.SseRequest:
    return sse.SseRequest(customer_key=_secure_enough(ctx, _customer_key(ctx.req.headers, COPY_CUSTOMER)))


def response_headers(system: dict[str, str], req: sse.SseRequest = sse.NO_SSE) -> dict[str, str]:
    return sse.response_headers(system, req)


# --------------------------------------------------------------------------- bucket default


async def put_bucket_encryption(ctx: Ctx) -> Response:
    rules = parse_bucket_encryption(await ctx.read_body(BODY_LIMIT))
    if len(rules) != 1:
        raise errors.MalformedXML()
    alg, kms_key, bucket_key = rules[0]
    if alg not in (sse.AES256, sse.KMS):
        raise (
            errors.MalformedXML()
            if alg is None
            else errors.InvalidArgument(
                "The encryption method specified is not supported",
                ArgumentName="SSEAlgorithm",
                ArgumentValue=alg,
            )
        )
    if kms_key:
        if alg != sse.KMS:
            raise errors.InvalidArgument(
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
                ArgumentName="ApplyServerSideEncryptionByDefault",
            )
        sse.check_kms_key_id(kms_key)
    if bucket_key not in (None, "true", "false"):
        raise errors.MalformedXML()
    doc = sse.BucketEncryption(alg, kms_key or None, bucket_key == "true")
    await ctx.engine.put_bucket_config(ctx.bucket, sse.CONFIG_NAME, doc.dump())
    return Response(200)


async def get_bucket_encryption(ctx: Ctx) -> Response:
    doc = await ctx.engine.get_bucket_config(ctx.bucket, sse.CONFIG_NAME)
    if doc is None:
        raise errors.error_class("ServerSideEncryptionConfigurationNotFoundError")(BucketName=ctx.bucket)
    cfg = sse.BucketEncryption.load(doc)
    x = XmlBuilder("ServerSideEncryptionConfiguration")
    x.open("Rule").open("ApplyServerSideEncryptionByDefault").elem("SSEAlgorithm", cfg.alg)
    if cfg.kms_key_id:
        x.elem("KMSMasterKeyID", cfg.kms_key_id)
    x.close().elem("BucketKeyEnabled", cfg.bucket_key).close()
    return xml_response(x)


async def delete_bucket_encryption(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, sse.CONFIG_NAME, None)
    return Response(204)

"""GetObjectAttributes (GET /bucket/key?attributes): an object's ETag, checksum, parts, class and size.

Answered from the object's metadata alone (no body is read), so it costs what a HEAD costs.
Part sizes come from the object's segments, which are its parts in order (engine.multipart), and
part checksums from what completion recorded. As on S3's general purpose buckets, the Part entries
are listed only for an object uploaded with an additional checksum; PartsCount always is.
"""

from __future__ import annotations

from rs3gw import errors
from rs3gw.codecs.checksums import ALGORITHMS
from rs3gw.engine.core import ReadResult
from rs3gw.engine.multipart import PART_CHECKSUMS
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.encryption import request_sse
from rs3gw.protocol.handlers.encryption import response_headers as sse_headers
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.timefmt import http_date

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
_BY_LOWER = {a.lower(): a for a in ATTRIBUTES}


def requested_attributes(header: str | None) -> set[str]:
    """The x-amz-object-attributes list; S3 requires at least one and refuses unknown names."""
    names = [n.strip() for n in (header or "").split(",") if n.strip()]
    if not names:
        raise errors.InvalidRequest(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either "
            "missing or empty"
        )
    out: set[str] = set()
    for name in names:
        known = _BY_LOWER.get(name.lower())
        if known is None:
            raise errors.InvalidArgument(
                "Invalid attribute name specified.",
                ArgumentName="x-amz-object-attributes",
                ArgumentValue=name,
            )
        out.add(known)
    return out


def _header_int(ctx: Ctx, name: str, default: int, hi: int) -> int:
    value = ctx.h(name)
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or int(value) > hi:
        raise errors.InvalidArgument(f"Invalid value for {name}", ArgumentName=name, ArgumentValue=value)
    return int(value)


async def get_object_attributes(ctx: Ctx) -> Response:
    wanted = requested_attributes(ctx.h("x-amz-object-attributes"))
    max_parts = _header_int(ctx, "x-amz-max-parts", 1000, 1000)
    marker = _header_int(ctx, "x-amz-part-number-marker", 0, 10_000)
    sse = request_sse(ctx, server_side=False)
    res: ReadResult = await ctx.engine.head_object(ctx.bucket, ctx.key, ctx.q("versionId"), sse=sse)
    obj = res.obj
    x = XmlBuilder("GetObjectAttributesResponse")
    if "ETag" in wanted:
        x.elem("ETag", obj.etag)
    if "Checksum" in wanted:
        _checksum(x, obj.meta.checksums, obj.meta.checksum_type)
    if "ObjectParts" in wanted and obj.parts_count:
        alg = next((a for a in obj.meta.checksums if a in ALGORITHMS), "")
        sums = obj.meta.system.get(PART_CHECKSUMS, "").split(",") if alg else []
        if len(sums) != obj.parts_count:
            alg, sums = "", []
        _parts(x, [s.size for s in obj.segments], (alg, sums), marker, max_parts)
    if "StorageClass" in wanted:
        x.elem("StorageClass", obj.meta.storage_class)
    if "ObjectSize" in wanted:
        x.elem("ObjectSize", obj.size)
    h = {"last-modified": http_date(obj.last_modified)}
    if res.versioned:
        h["x-amz-version-id"] = obj.version_id
    h.update(sse_headers(obj.meta.system, sse))
    return xml_response(x, headers=h)


def _checksum(x: XmlBuilder, checksums: dict[str, str], checksum_type: str) -> None:
    values = {alg: v for alg, v in checksums.items() if alg in ALGORITHMS and v}
    if not values:
        return
    x.open("Checksum")
    for alg, value in values.items():
        # A composite checksum is reported without its "-<parts>" suffix; ObjectParts has the count.
        x.elem(f"Checksum{alg}", value.split("-", 1)[0] if checksum_type == "COMPOSITE" else value)
    if checksum_type:
        x.elem("ChecksumType", checksum_type)
    x.close()


def _parts(
    x: XmlBuilder, sizes: list[int], part_sums: tuple[str, list[str]], marker: int, max_parts: int
) -> None:
    alg, sums = part_sums
    page = [n for n in range(1, len(sizes) + 1) if n > marker][:max_parts]
    last = page[-1] if page else marker
    x.open("ObjectParts").elem("PartsCount", len(sizes)).elem("PartNumberMarker", marker)
    x.elem("NextPartNumberMarker", last).elem("MaxParts", max_parts).elem("IsTruncated", last < len(sizes))
    for n in page if sums else []:
        x.open("Part").elem("PartNumber", n).elem("Size", sizes[n - 1])
        x.elem(f"Checksum{alg}", sums[n - 1]).close()
    x.close()

"""Image steps with Pillow: resize (contain/cover/fill), crop, rotate, grayscale, format, quality.

Consecutive image steps compile into one stage so the image is decoded and encoded once. Decoding
refuses images over a pixel budget before any pixel is read (Pillow's bomb check stays on too).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from rs3gw.transform.args import Args
from rs3gw.transform.spec import Step, invalid
from rs3gw.transform.stage import IMAGE, Stage

STEPS = frozenset({"resize", "crop", "rotate", "grayscale", "format", "quality"})
MAX_SIDE = 10_000
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
    "bmp": ("BMP", "image/bmp"),
    "tiff": ("TIFF", "image/tiff"),
    "tif": ("TIFF", "image/tiff"),
}
_BY_PIL = dict(FORMATS.values())
_MODES = {"JPEG": ("L", "RGB", "CMYK"), "BMP": ("1", "L", "P", "RGB", "RGBA"), "GIF": ("L", "P")}

Op = Callable[[Image.Image], Image.Image]


@dataclass
class _Pipeline:
    ops: list[Op] = field(default_factory=list)
    fmt: str | None = None  # Pillow format name; None keeps the source's
    quality: int | None = None


def _resize(a: Args) -> Op:
    w = a.integer("w", 1, MAX_SIDE)
    h = a.integer("h", 1, MAX_SIDE)
    fit = a.choice("fit", ("contain", "cover", "fill"), "contain")
    if w is None and h is None:
        raise invalid("transformation 'resize' needs w and/or h")

    def op(img: Image.Image) -> Image.Image:
        if w is None or h is None:  # one side given: keep the aspect ratio
            sw, sh = img.size
            if w is not None:
                return img.resize((w, max(1, round(sh * w / sw))), Image.Resampling.LANCZOS)
            assert h is not None
            return img.resize((max(1, round(sw * h / sh)), h), Image.Resampling.LANCZOS)
        if fit == "fill":
            return img.resize((w, h), Image.Resampling.LANCZOS)
        if fit == "cover":
            return ImageOps.fit(img, (w, h), Image.Resampling.LANCZOS)
        return ImageOps.contain(img, (w, h), Image.Resampling.LANCZOS)

    return op


def _crop(a: Args) -> Op:
    x = a.integer("x", 0, MAX_SIDE * 10, 0) or 0
    y = a.integer("y", 0, MAX_SIDE * 10, 0) or 0
    w = a.integer("w", 1, MAX_SIDE)
    h = a.integer("h", 1, MAX_SIDE)
    if w is None or h is None:
        raise invalid("transformation 'crop' needs w and h")

    def op(img: Image.Image) -> Image.Image:
        if x + w > img.width or y + h > img.height:
            raise invalid(f"crop box {w}x{h}+{x}+{y} lies outside the {img.width}x{img.height} image")
        return img.crop((x, y, x + w, y + h))

    return op


def _rotate(a: Args) -> Op:
    deg = a.integer("deg", -360, 360, 90) or 0
    return lambda img: img.rotate(-deg, expand=True)  # positive degrees turn clockwise


def _grayscale(_a: Args) -> Op:
    return lambda img: ImageOps.grayscale(img)


def _add(p: _Pipeline, step: Step) -> None:
    if step.name == "format":
        a = Args(step, "f")
        p.fmt = FORMATS[a.choice("f", FORMATS) or "png"][0]
    elif step.name == "quality":
        a = Args(step, "q")
        p.quality = a.integer("q", 1, 100)
    else:
        a = Args(step, "deg" if step.name == "rotate" else None)
        builders = {"resize": _resize, "crop": _crop, "rotate": _rotate, "grayscale": _grayscale}
        p.ops.append(builders[step.name](a))
    a.done()


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            raise invalid(
                f"the image is {img.width}x{img.height}; at most {max_pixels} pixels are transformed"
            )
        img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise invalid(f"the object is not an image this server can decode ({type(e).__name__})") from None
    return img


def _encode(img: Image.Image, fmt: str, quality: int | None) -> bytes:
    allowed = _MODES.get(fmt)
    if allowed is not None and img.mode not in allowed:
        img = img.convert("P" if fmt == "GIF" else "RGB")
    elif img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "F", "CMYK"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    if fmt == "WEBP" and img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if img.mode in ("LA", "P") else "RGB")
    kwargs: dict[str, object] = {}
    if quality is not None and fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    out = io.BytesIO()
    try:
        img.save(out, format=fmt, **kwargs)
    except (OSError, ValueError) as e:
        raise invalid(f"cannot encode the result as {fmt}: {e}") from None
    return out.getvalue()


def compile_image(steps: list[Step], max_pixels: int) -> Stage:
    """One stage for a run of consecutive image steps (all parameters validated now)."""
    p = _Pipeline()
    for step in steps:
        _add(p, step)

    def apply(data: bytes) -> bytes:
        img = _decode(data, max_pixels)
        source = "JPEG" if img.format == "MPO" else img.format  # camera JPEGs open as MPO
        fmt = p.fmt or (source if source in _BY_PIL else "PNG")
        try:
            img = ImageOps.exif_transpose(img) or img
            for op in p.ops:
                img = op(img)
        except (ValueError, OSError, TypeError) as e:  # e.g. a mode the resampler does not take
            raise invalid(f"cannot transform this image ({img.mode}, {img.format}): {e}") from None
        return _encode(img, fmt, p.quality)

    ctype = _BY_PIL[p.fmt] if p.fmt else None
    return Stage("image", IMAGE, ctype, apply=apply)


def image_content_type(data: bytes) -> str | None:
    """The MIME type of encoded image bytes when the stage kept the source format."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _BY_PIL.get(img.format or "")
    except (UnidentifiedImageError, OSError):
        return None

"""Portraits: load and validate an image the way every engine expects it (RGB, upright, no alpha)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .ffmpeg import check_file

# Portrait limits: big enough for any phone photo, small enough to never exhaust memory.
MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 40_000_000
_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "MPO"}
_FIX = "Use a PNG, JPEG, WebP or BMP photo."


def load_image(path: str | os.PathLike, *, name: str = "portrait") -> Image.Image:
    """Load a portrait as RGB, EXIF-rotated, transparency flattened on white, with size guards."""
    p = check_file(path, name)
    _check_header(p, name)
    try:
        with Image.open(p) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "F") or img.mode.startswith("I;16"):
                img = _to_8bit_gray(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            name,
            f"the image file is damaged or truncated ({exc})",
            "Re-export or re-download the photo and upload it again.",
            path=str(p),
        ) from exc


def _check_header(p: os.PathLike, name: str) -> None:
    """Format and size from the header alone, so a decompression bomb is refused before decoding."""
    try:
        with Image.open(p) as probe_img:
            w, h = probe_img.size
            fmt = probe_img.format
    except Image.DecompressionBombError as exc:
        raise InputError(
            name,
            f"the image is too large to decode safely ({exc})",
            f"Use an image under {MAX_IMAGE_SIDE} px per side.",
            path=str(p),
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(name, "is not a readable image", _FIX, path=str(p)) from exc
    if fmt not in _FORMATS:
        raise InputError(name, f"unsupported image format {fmt}", _FIX, path=str(p))
    if w < MIN_IMAGE_SIDE or h < MIN_IMAGE_SIDE:
        raise InputError(
            name,
            f"the image is only {w}x{h} pixels",
            f"Use a photo of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels (512 or more is best).",
            path=str(p),
        )
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE or w * h > MAX_IMAGE_PIXELS:
        raise InputError(
            name,
            f"the image is {w}x{h} pixels, larger than the {MAX_IMAGE_SIDE} px / {MAX_IMAGE_PIXELS // 1_000_000} MP limit",
            "Downscale the photo (e.g. to 2048 px on the long side) and upload it again.",
            path=str(p),
        )


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit / float grayscale -> 8-bit. Pillow's own convert("RGB") clips them to white."""
    arr = np.asarray(img, dtype=np.float32)
    peak = float(arr.max()) if arr.size else 0.0
    if img.mode == "F":
        scale = 255.0 if peak <= 1.0 else 1.0
    else:
        scale = 1.0 / 257.0 if peak > 255 else 1.0
    return Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8))

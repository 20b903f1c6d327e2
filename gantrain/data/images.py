"""The one image reader: any file Pillow opens, in any of its modes, to the model's range [-1, 1] from its
true bit depth, as 1 (grey) or 3 (RGB) channels.

- Bit depth: modes 1, L, P, RGB, … are 8-bit (x / 255); I;16 in any byte order (16-bit PNG and TIFF) is
  x / 65535; I (32-bit integers) is taken as 16-bit, so its values must lie in [0, 65535]; F (32-bit floats)
  is taken as [0, 1]. An I or F file outside its range is refused (``out_of_range``), never clipped.
- Transparency (LA, PA, RGBA, a palette or grey/RGB image with a transparent colour, a 16-bit grey image with a
  transparent value) is composited on black: a fully transparent pixel is −1. Pillow reads 16-bit grey + alpha
  and 16-bit RGBA PNGs as 8-bit RGBA, so these are composited from 8 bits; it reads a 16-bit RGB PNG as the
  high bytes of its values, so its 16-bit transparent colour is matched on its high bytes too (a colour within
  1/256 of it is transparent as well).
- Colour: P, CMYK, YCbCr, LAB, HSV and RGBX go to RGB through Pillow; grey is repeated for 3 channels, and
  colour becomes grey by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B, Pillow's own L) for 1.
- Animated and multi-page files (GIF, TIFF): the first frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".tif", ".tiff", ".webp")
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
RANGES = {"I": (0, 65535), "F": (0.0, 1.0)}  # modes whose range is not their type's: each file is checked
GREY = {"1", "L", "LA", "La", *SIXTEEN_BIT, *RANGES}
MODES = GREY | {"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def header(path: Path) -> str | None:
    """The file's Pillow mode, from its header only, or None if it is no readable image."""
    try:
        with Image.open(path) as img:
            return img.mode
    except (OSError, SyntaxError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        return None


def out_of_range(path: Path) -> tuple[float, float] | None:
    """For a mode I or F file (its pixels decoded): its (min, max) when a value lies outside ``RANGES``
    (NaN included), else None. OSError if the pixels do not decode."""
    with Image.open(path) as img:
        lo, hi = RANGES[img.mode]
        x = np.asarray(img, dtype=np.float64)
    if np.isfinite(x).all() and lo <= x.min() and x.max() <= hi:
        return None
    return float(np.nanmin(x)), float(np.nanmax(x))


def _canonical(img: Image.Image) -> Image.Image:
    """``img`` in one of the modes read below: 16-bit and I/F kept, else 8-bit L, LA, RGB or RGBA."""
    if img.mode in SIXTEEN_BIT or img.mode in RANGES:
        if "transparency" not in img.info:
            return img
        x = np.asarray(img)  # the transparent value on black: 0, in the file's own depth, before any resizing
        return Image.fromarray(np.where(x == img.info["transparency"], 0, x).astype(x.dtype))
    if img.mode == "RGB" and "transparency" in img.info and img.tile and str(img.tile[0][3]).endswith(";16B"):
        img.info["transparency"] = tuple(v >> 8 for v in img.info["transparency"])  # the bytes Pillow kept
    if "transparency" in img.info or img.mode in ("PA", "RGBa"):
        return img.convert("RGBA")
    if img.mode in ("1", "La"):
        return img.convert({"1": "L", "La": "LA"}[img.mode])
    return img if img.mode in ("L", "LA", "RGB", "RGBA") else img.convert("RGB")


def _unit(img: Image.Image) -> np.ndarray:
    """Pixels as float32 (H, W, k) in [0, 1]: k = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA."""
    scale = 1 if img.mode == "F" else 65535 if img.mode in SIXTEEN_BIT or img.mode == "I" else 255
    x = np.asarray(img, dtype=np.float32) / scale
    return x if x.ndim == 3 else x[..., None]


def read_image(path: Path, channels: int, size: int | None = None) -> torch.Tensor:
    """The image (its first frame) as a float32 tensor (channels, H, W) in [-1, 1]; with ``size``, its shorter
    side resized to ``size`` and centre-cropped to size × size (torchvision's Resize and CenterCrop, Pillow's
    antialiased bilinear in the file's own bit depth). OSError if it does not decode."""
    with Image.open(path) as img:
        img = _canonical(img)
        if size is not None:
            img = transforms.CenterCrop(size)(transforms.Resize(size)(img))
        x = _unit(img)
    if x.shape[2] in (2, 4):  # composite on black
        x = x[..., :-1] * x[..., -1:]
    if channels == 1 and x.shape[2] == 3:
        x = (x @ LUMA)[..., None]
    elif channels == 3 and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))) * 2 - 1

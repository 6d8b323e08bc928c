"""PNG, JPEG, TIFF and BMP through Pillow: 8- and 16-bit, grayscale and colour, multi-page TIFF."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_pixel_budget, sha256_file
from evlf.core.imaging.render import to_rgb
from evlf.core.types import ImageMeta, LoadedImage

_FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP"}


def _pixels(im: object) -> np.ndarray:
    """Decode a Pillow image to an array that keeps its bit depth."""
    from PIL import Image

    assert isinstance(im, Image.Image)
    mode = im.mode
    if mode in ("1", "L", "RGB", "RGBA", "LA", "I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im)
        if mode == "1":
            arr = arr.astype(np.uint8) * 255
        elif mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
        elif mode == "I":
            # 32-bit integer; most often 16-bit data stored wide
            arr = arr.astype(np.int32)
            if arr.min() >= 0 and arr.max() <= 65535:
                arr = arr.astype(np.uint16)
        return arr
    if mode == "P":
        return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
    return np.asarray(im.convert("RGB"))


def load_raster(path: Path, fmt: str, frame: int | None) -> LoadedImage:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # our own budget below is checked from the header instead
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(path, f"corrupt {_FORMAT_NAMES[fmt]} file (cannot read its header)") from None
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc}") from None
    with im:
        frames = int(getattr(im, "n_frames", 1) or 1)
        width, height = im.size
        check_pixel_budget(path, width, height, frames)
        index = (frames // 2 if frames > 1 else 0) if frame is None else frame
        if not 0 <= index < frames:
            raise InputError(path, f"frame {index} does not exist (the file has {frames})")
        try:
            if frames > 1:
                im.seek(index)
            im.load()
            pixels = _pixels(im)
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(path, f"truncated or corrupt {_FORMAT_NAMES[fmt]} data ({exc})") from None
        mode = im.mode
        dpi = im.info.get("dpi")
    bits = 16 if pixels.dtype in (np.uint16, np.int32) else (32 if pixels.dtype == np.float32 else 8)
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    spacing = None
    if dpi and all(float(d) > 0 for d in dpi[:2]) and fmt == "tiff":
        spacing = (25.4 / float(dpi[1]), 25.4 / float(dpi[0]))  # mm per pixel (row, column)
    meta = ImageMeta(
        photometric="RGB" if samples >= 3 else "MONOCHROME2",
        bits_stored=bits,
        samples_per_pixel=samples,
        pixel_spacing=spacing,
    )
    _ = mode
    return LoadedImage(
        path=path,
        format=fmt,
        width=width,
        height=height,
        frames=frames,
        frame_index=index,
        sha256=sha256_file(path),
        meta=meta,
        pixels=pixels,
        rgb=to_rgb(pixels),
    )

"""PNG, JPEG, TIFF and BMP through Pillow: 8- and 16-bit, grayscale and colour, multi-page TIFF.

Pillow's own decompression-bomb guard stays on for the process. An image
beyond it is reopened with the guard raised to evlf's pixel budget, under a
lock; evlf's pixel and byte budgets are checked from that header before a
pixel is decoded, and only an image that passed them is sought and decoded
with the guard raised (Pillow checks TIFF pages again there). Images within
Pillow's guard never take the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_memory_budget, check_pixel_budget, max_pixels, sha256_file
from evlf.core.imaging.quiet import one_line, quiet
from evlf.core.imaging.render import to_rgb
from evlf.core.types import ImageMeta, LoadedImage

_FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP"}

#: Bits per sample of Pillow's modes (the rest are converted to 8-bit RGB).
_MODE_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}

_PILLOW_LIMIT = threading.Lock()


@contextmanager
def pillow_pixel_limit(limit: int) -> Iterator[None]:
    """Raise Pillow's bomb guard to `limit` pixels for the duration; only for a caller that checks its own budget."""
    from PIL import Image

    with _PILLOW_LIMIT:
        before = Image.MAX_IMAGE_PIXELS
        if before is not None:
            Image.MAX_IMAGE_PIXELS = max(int(before), int(limit))
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def _budgeted(im: Any) -> Any:
    """Pillow's guard raised for an image beyond it that evlf's budgets passed; nothing (no lock) otherwise."""
    from PIL import Image

    width, height = im.size
    if Image.MAX_IMAGE_PIXELS is None or width * height <= Image.MAX_IMAGE_PIXELS:
        return nullcontext()
    return pillow_pixel_limit(max_pixels())


def open_pillow(path: Path, fmt: str) -> Any:
    """Image.open, quiet, with the header parsed under Pillow's guard or (beyond it) evlf's own pixel budget."""
    from PIL import Image, UnidentifiedImageError

    try:
        with quiet():
            try:
                return Image.open(path)
            except Image.DecompressionBombError:
                with pillow_pixel_limit(max_pixels()):
                    return Image.open(path)
    except Image.DecompressionBombError:
        raise InputError(path, f"image too large: over the limit of {max_pixels():,} pixels (set EVLF_MAX_PIXELS to raise it)") from None
    except UnidentifiedImageError:
        raise InputError(path, f"corrupt {_FORMAT_NAMES[fmt]} file (cannot read its header)") from None
    except Exception as exc:  # Pillow's header parsers raise many types on malformed files
        raise InputError(path, f"corrupt {_FORMAT_NAMES[fmt]} header ({one_line(exc)})") from None


def _pixels(im: Any) -> np.ndarray:
    """Decode a Pillow image to an array that keeps its bit depth."""
    mode = im.mode
    if mode in ("1", "L", "RGB", "RGBA", "LA", "I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im)
        if mode == "1":
            arr = arr.astype(np.uint8) * 255
        elif mode.startswith("I;16"):
            arr = arr.astype(np.uint16, copy=False)
        elif mode == "I":
            # 32-bit integer; most often 16-bit data stored wide
            arr = arr.astype(np.int32)
            if arr.min() >= 0 and arr.max() <= 65535:
                arr = arr.astype(np.uint16)
        return arr
    if mode == "P":
        return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
    return np.asarray(im.convert("RGB"))


def _check_budgets(path: Path, im: Any, frames: int) -> None:
    width, height = im.size
    check_pixel_budget(path, width, height, frames)
    bits = _MODE_BITS.get(im.mode, 8)
    samples = len(im.getbands())
    # Pillow's buffer and the array copied from it; a float32 window only for data deeper than 8 bits
    check_memory_budget(path, width, height, samples, bits, copies=2, working=4 if bits > 8 else 0)


def _guarded(path: Path, fmt: str, step: Any) -> Any:
    """Run one Pillow step quietly; any failure of a decoder on malformed data means the file is corrupt."""
    from PIL import Image

    try:
        with quiet():
            return step()
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(path, f"image too large: a page over the limit of {max_pixels():,} pixels (set EVLF_MAX_PIXELS to raise it)") from None
    except MemoryError:
        raise InputError(path, f"{_FORMAT_NAMES[fmt]} data needs more memory than is available (corrupt sizes?)") from None
    except Exception as exc:
        raise InputError(path, f"truncated or corrupt {_FORMAT_NAMES[fmt]} data ({one_line(exc)})") from None


def load_raster(path: Path, fmt: str, frame: int | None) -> LoadedImage:
    im = open_pillow(path, fmt)
    with im:
        frames = int(_guarded(path, fmt, lambda: getattr(im, "n_frames", 1)) or 1)  # counting TIFF pages walks the file
        _check_budgets(path, im, frames)
        index = (frames // 2 if frames > 1 else 0) if frame is None else frame
        if not 0 <= index < frames:
            raise InputError(path, f"frame {index} does not exist (the file has {frames})")
        if frames > 1:
            with _budgeted(im):  # Pillow checks a TIFF page's size again on seek
                _guarded(path, fmt, lambda: im.seek(index))
            _check_budgets(path, im, frames)  # pages may differ in size
        with _budgeted(im):  # and on load
            _guarded(path, fmt, im.load)
        pixels = _guarded(path, fmt, lambda: _pixels(im))
        dpi = im.info.get("dpi")
    return LoadedImage(
        path=path,
        format=fmt,
        width=pixels.shape[1],
        height=pixels.shape[0],
        frames=frames,
        frame_index=index,
        sha256=sha256_file(path),
        meta=_meta(pixels, fmt, dpi),
        pixels=pixels,
        rgb=to_rgb(pixels),
    )


def _meta(pixels: np.ndarray, fmt: str, dpi: Any) -> ImageMeta:
    bits = 16 if pixels.dtype in (np.uint16, np.int32) else (32 if pixels.dtype == np.float32 else 8)
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    spacing = None
    try:
        if dpi and fmt == "tiff" and all(float(d) > 0 for d in dpi[:2]):
            spacing = (25.4 / float(dpi[1]), 25.4 / float(dpi[0]))  # mm per pixel (row, column)
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        spacing = None  # a malformed resolution tag means "not calibrated"
    return ImageMeta(
        photometric="RGB" if samples >= 3 else "MONOCHROME2",
        bits_stored=bits,
        samples_per_pixel=samples,
        pixel_spacing=spacing,
    )

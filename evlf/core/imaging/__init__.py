"""Image ingest: any supported file to a LoadedImage (original grid + 8-bit RGB rendering).

The original pixel grid is kept untouched in size (boxes and refinement live
there); the rendering is what the VLM sees. Headers are checked before any
pixel is decoded (pixel count, and memory in bytes: samples, bit depth, the
working copies), so a decompression bomb, a malformed header or a truncated
file is refused with a one-line InputError naming the file; the libraries'
warnings and logs are kept off stderr. `open_rgb_image` gives code outside
core (training, evaluation) the same guards where it would call PIL itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_readable_file, sniff_format
from evlf.core.imaging.quiet import quiet
from evlf.core.types import LoadedImage

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

__all__ = ["load_image", "open_rgb_image", "sniff_format", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = ("png", "jpeg", "tiff", "bmp", "dicom", "nifti")


def load_image(path: str | Path, frame: int | None = None) -> LoadedImage:
    """Load one image file; `frame` picks a frame (DICOM) or slice (NIfTI), default the middle one."""
    with quiet():  # one raise of the readers' logger levels for the whole load (see quiet)
        return _load(Path(path), frame)


def _load(p: Path, frame: int | None) -> LoadedImage:
    check_readable_file(p)
    fmt = sniff_format(p)
    if fmt == "dicom":
        from evlf.core.imaging.dicom import load_dicom

        return load_dicom(p, frame)
    if fmt == "nifti":
        from evlf.core.imaging.nifti import load_nifti

        return load_nifti(p, frame)
    if fmt in ("png", "jpeg", "tiff", "bmp"):
        from evlf.core.imaging.raster import load_raster

        return load_raster(p, fmt, frame)
    raise InputError(p, f"not a supported image (supported: {', '.join(SUPPORTED_FORMATS)})")


def open_rgb_image(path: str | Path, frame: int | None = None) -> Image:
    """The 8-bit RGB rendering of any supported file as a PIL image, through the same guards as `load_image`.

    For code that would otherwise call `PIL.Image.open` on untrusted files
    (training, evaluation): budgets checked before decoding, Pillow's guard
    kept on, DICOM and NIfTI rendered as the pipeline sees them, and every
    failure an InputError naming the file. `.size` is the original grid's size.
    """
    from PIL import Image as PILImage

    return PILImage.fromarray(load_image(path, frame).rgb)

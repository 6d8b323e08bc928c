"""NIfTI volumes through nibabel: one axial slice (default the middle) becomes the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_pixel_budget, sha256_file
from evlf.core.imaging.render import auto_window, to_rgb
from evlf.core.types import ImageMeta, LoadedImage


def load_nifti(path: Path, frame: int | None) -> LoadedImage:
    try:
        import nibabel as nib
    except ImportError:
        raise InputError(path, "NIfTI needs nibabel (install evlf[nifti])") from None
    try:
        img = nib.load(str(path))
    except Exception as exc:
        raise InputError(path, f"corrupt NIfTI header ({exc})") from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 2:
        raise InputError(path, f"NIfTI holds no 2-D image (shape {shape})")
    nx, ny = shape[0], shape[1]
    nz = shape[2] if len(shape) >= 3 else 1
    check_pixel_budget(path, nx, ny, nz)
    index = nz // 2 if frame is None else frame
    if not 0 <= index < nz:
        raise InputError(path, f"slice {index} does not exist (the volume has {nz})")
    try:
        proxy = img.dataobj
        volume_slice = np.asarray(proxy[:, :, index] if len(shape) >= 3 else proxy[:, :])
    except Exception as exc:
        raise InputError(path, f"truncated or corrupt NIfTI data ({exc})") from None
    if volume_slice.ndim > 2:  # 4-D: first time point
        volume_slice = volume_slice.reshape(volume_slice.shape[0], volume_slice.shape[1], -1)[:, :, 0]
    # NIfTI is stored x-fastest with the first axis left-right; show rows top-down like radiology viewers
    pixels = np.ascontiguousarray(np.flipud(volume_slice.T))
    zooms = img.header.get_zooms()
    spacing = (float(zooms[1]), float(zooms[0])) if len(zooms) >= 2 else None
    meta = ImageMeta(
        modality=None,
        photometric="MONOCHROME2",
        bits_stored=int(np.dtype(pixels.dtype).itemsize * 8),
        samples_per_pixel=1,
        pixel_spacing=spacing,
    )
    return LoadedImage(
        path=path,
        format="nifti",
        width=pixels.shape[1],
        height=pixels.shape[0],
        frames=nz,
        frame_index=index,
        sha256=sha256_file(path),
        meta=meta,
        pixels=pixels,
        rgb=to_rgb(auto_window(pixels.astype(np.float64))),
    )

"""NIfTI volumes through nibabel: one axial slice (default the middle) becomes the image.

The volume is first brought to RAS+ with `nibabel.as_closest_canonical`, so
the same anatomy stored in any voxel order renders the same, and the slice is
shown the radiological way, as DICOM axial images are: anterior at the top,
the patient's right on the image's left (what the laterality checks assume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_memory_budget, check_pixel_budget, sha256_file
from evlf.core.imaging.quiet import one_line, quiet
from evlf.core.imaging.render import auto_window, to_rgb
from evlf.core.types import ImageMeta, LoadedImage


def _canonical(path: Path, img: Any) -> Any:
    """The image in RAS+ voxel order; nibabel returns it unchanged (data unread) when it already is."""
    import nibabel as nib

    if len(img.shape) < 3:
        return img
    try:
        with quiet():
            return nib.as_closest_canonical(img)
    except MemoryError:
        raise InputError(path, "NIfTI volume needs more memory than is available (corrupt sizes?)") from None
    except Exception as exc:
        raise InputError(path, f"NIfTI orientation (affine) cannot be used ({one_line(exc)})") from None


def _open(path: Path) -> Any:
    try:
        import nibabel as nib
    except ImportError:
        raise InputError(path, "NIfTI needs nibabel (install evlf[nifti])") from None
    try:
        with quiet():
            return nib.load(str(path))
    except Exception as exc:
        raise InputError(path, f"corrupt NIfTI header ({one_line(exc)})") from None


def _check(path: Path, img: Any) -> tuple[int, ...]:
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 2:
        raise InputError(path, f"NIfTI holds no 2-D image (shape {shape})")
    nz = shape[2] if len(shape) >= 3 else 1
    check_pixel_budget(path, shape[0], shape[1], nz)
    bits = int(np.dtype(img.get_data_dtype()).itemsize * 8)
    # reorienting reads the whole volume (all slices and time points): budget that many copies of a slice
    copies = int(np.prod(shape[2:], dtype=np.float64)) + 1
    check_memory_budget(path, shape[0], shape[1], 1, bits, copies=copies, working=8)
    return shape


def _slice(path: Path, img: Any, index: int) -> np.ndarray:
    try:
        with quiet():
            proxy = img.dataobj
            data = np.asarray(proxy[:, :, index] if len(img.shape) >= 3 else proxy[:, :])
    except MemoryError:
        raise InputError(path, "NIfTI data needs more memory than is available (corrupt sizes?)") from None
    except Exception as exc:
        raise InputError(path, f"truncated or corrupt NIfTI data ({one_line(exc)})") from None
    if data.ndim > 2:  # 4-D: first time point
        data = data.reshape(data.shape[0], data.shape[1], -1)[:, :, 0]
    return data


def load_nifti(path: Path, frame: int | None) -> LoadedImage:
    img = _open(path)
    shape = _check(path, img)
    img = _canonical(path, img)
    nz = shape[2] if len(shape) >= 3 else 1
    index = nz // 2 if frame is None else frame
    if not 0 <= index < nz:
        raise InputError(path, f"slice {index} does not exist (the volume has {nz})")
    data = _slice(path, img, index)  # RAS+: axis 0 runs to the patient's right, axis 1 to anterior
    pixels = np.ascontiguousarray(data[::-1, ::-1].T)  # rows anterior->posterior, columns right->left
    zooms = img.header.get_zooms()
    spacing = (float(zooms[1]), float(zooms[0])) if len(zooms) >= 2 and min(zooms[:2]) > 0 else None
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
        rgb=to_rgb(auto_window(pixels)),
    )

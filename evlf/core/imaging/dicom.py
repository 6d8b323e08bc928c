"""DICOM through pydicom: modality LUT, VOI LUT or window, MONOCHROME1, colour, one frame at a time.

Only the chosen frame is decoded (pydicom.pixels.pixel_array with `index`),
so a long cine loop costs one frame, and the pixel and memory budgets are
checked from the header before any pixel data is read. Header values are
untrusted: a malformed number the decode needs is a one-line error, a
malformed optional one (spacing, window) is ignored, and text is sanitised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.dicom_header import header_int, is_truncated, meta_from, transfer_syntax
from evlf.core.imaging.guards import check_memory_budget, check_pixel_budget, sha256_file
from evlf.core.imaging.quiet import one_line, quiet
from evlf.core.imaging.render import auto_window, by_table, to_rgb, window
from evlf.core.types import LoadedImage

#: Bytes per sample of pydicom's float64 modality and VOI LUT outputs plus evlf's float32 window.
_DICOM_WORKING_BYTES = 8 + 8 + 4 + 2


def _decoder_problem(ds: Any, exc: Exception) -> str:
    """One line saying which compressed syntax failed and whether a decoder is missing or failed."""
    name = transfer_syntax(ds)
    detail = one_line(exc, with_type=False)
    if "all available plugins" in detail or "unable to decode" in detail.lower():
        return f"compressed pixel data ({name}) could not be decoded by any installed decoder: {detail}"
    return (
        f"compressed pixel data ({name}) needs a decoder that is not installed "
        f"(install evlf[dicom-codecs]: pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg): {detail}"
    )


def _voi(ds: Any, values: np.ndarray) -> np.ndarray | None:
    """The file's VOI LUT or window through pydicom, as 8 bits; None when it has none or it is unusable."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" not in ds and not ("WindowCenter" in ds and "WindowWidth" in ds):
        return None
    try:
        with quiet():
            if "VOILUTSequence" in ds:  # a LUT's output range is its own entries
                return auto_window(by_table(lambda v: np.asarray(apply_voi_lut(v, ds, index=0)), values), 0.0, 100.0)
            # a window's output range: what pydicom maps everything below and above the window to
            lo, hi = (float(v) for v in apply_voi_lut(np.array([-np.inf, np.inf]), ds, index=0))
            if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
                return None
            return by_table(lambda v: window(np.asarray(apply_voi_lut(v, ds, index=0)), (lo + hi) / 2.0, hi - lo), values)
    except Exception:  # a malformed window (a string, a zero width) is ignored, as viewers do
        return None


def _render(ds: Any, frame: np.ndarray, original: np.ndarray) -> np.ndarray:
    """8-bit rendering: VOI LUT or window when the file has a usable one, else a percentile window."""
    if frame.ndim == 3:  # colour (pydicom already converted YBR to RGB)
        return to_rgb(frame if frame.dtype == np.uint8 else auto_window(frame))
    rendered = _voi(ds, original)
    if rendered is None:
        rendered = auto_window(original)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper().strip() == "MONOCHROME1":
        rendered = 255 - rendered
    return to_rgb(rendered)


def _read_header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with quiet():
            return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise InputError(path, f"not a valid DICOM file ({one_line(exc, with_type=False)})") from None
    except Exception as exc:
        problem = "truncated DICOM header" if isinstance(exc, EOFError) else "corrupt DICOM header"
        raise InputError(path, f"{problem} ({one_line(exc)})") from None


def _decode(path: Path, ds: Any, index: int | None) -> tuple[Any, np.ndarray]:
    """The full dataset (pixel data deferred where the syntax allows) and the one decoded frame."""
    import pydicom
    from pydicom.pixels import pixel_array
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    deflated = transfer_syntax(ds, as_uid=True) == DeflatedExplicitVRLittleEndian
    try:
        with quiet():
            # a deflated file is inflated whole by dcmread; the others are read one frame from disk
            full = pydicom.dcmread(path) if deflated else pydicom.dcmread(path, defer_size="1 KB")
            if not any(k in full for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                raise InputError(path, "DICOM file has image attributes but no pixel data")
            raw = pixel_array(full if deflated else path, index=index)
    except InputError:
        raise
    except MemoryError:
        raise InputError(path, "DICOM pixel data needs more memory than is available (corrupt sizes?)") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise InputError(path, _decoder_problem(ds, exc)) from None
    except Exception as exc:  # a decoder failing on malformed data: the file is corrupt, whatever the type
        raise InputError(path, f"truncated or corrupt DICOM pixel data ({one_line(exc)})") from None
    return full, np.asarray(raw)


def _modality(full: Any, raw: np.ndarray, path: Path) -> np.ndarray:
    """Stored values through pydicom's modality LUT (rescale to HU and the like), kept integer when they are."""
    from pydicom.pixels import apply_modality_lut

    try:
        with quiet():
            values = np.asarray(apply_modality_lut(raw, full))
    except Exception as exc:
        raise InputError(path, f"malformed modality LUT or rescale in the DICOM header ({one_line(exc)})") from None
    if np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() and np.all(np.mod(values, 1) == 0):
        if values.size and values.min() >= -32768 and values.max() <= 32767:
            values = values.astype(np.int16 if values.min() < 0 else np.uint16)
    return values


def _check_header(path: Path, ds: Any) -> tuple[int, int, int, int]:
    """Rows, columns, frames and samples from the header, budgets checked; refuse what is not an image."""
    if "Rows" not in ds or "Columns" not in ds:
        if is_truncated(ds):
            raise InputError(path, "truncated DICOM file (it ends before the image attributes)")
        raise InputError(path, "DICOM file holds no image (no Rows/Columns; e.g. a report or structured data)")
    rows, cols = header_int(path, ds, "Rows"), header_int(path, ds, "Columns")
    frames = header_int(path, ds, "NumberOfFrames", 1) or 1
    samples = header_int(path, ds, "SamplesPerPixel", 1) or 1
    bits = header_int(path, ds, "BitsAllocated", 16) or 16
    check_pixel_budget(path, cols, rows, frames, samples)
    check_memory_budget(path, cols, rows, samples, bits, working=_DICOM_WORKING_BYTES if samples == 1 else 4)
    return rows, cols, frames, samples


def load_dicom(path: Path, frame: int | None) -> LoadedImage:
    ds = _read_header(path)
    rows, cols, frames, samples = _check_header(path, ds)
    index = (frames // 2 if frames > 1 else 0) if frame is None else frame
    if not 0 <= index < frames:
        raise InputError(path, f"frame {index} does not exist (the file has {frames})")
    full, raw = _decode(path, ds, index if frames > 1 else None)
    if raw.ndim == 3 and samples == 1 and frames > 1:  # defensive: a whole volume came back
        raw = raw[0]
    if raw.ndim not in (2, 3) or raw.shape[:2] != (rows, cols):
        raise InputError(path, f"pixel data of shape {raw.shape} does not match the header's {rows} x {cols}")
    original = _modality(full, raw, path) if raw.ndim == 2 else raw
    rgb = _render(full, raw, original)
    meta = meta_from(full)
    if raw.ndim == 3:
        meta = meta.model_copy(update={"samples_per_pixel": raw.shape[2]})
    return LoadedImage(
        path=path,
        format="dicom",
        width=cols,
        height=rows,
        frames=frames,
        frame_index=index,
        sha256=sha256_file(path),
        meta=meta,
        pixels=original,
        rgb=rgb,
    )

"""DICOM through pydicom: modality LUT, VOI LUT or window, MONOCHROME1, colour, one frame at a time.

Only the chosen frame is decoded (pydicom.pixels.pixel_array with `index`),
so a long cine loop costs one frame, and the Rows x Columns x Frames budget is
checked before any pixel data is read.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import InputError
from evlf.core.imaging.guards import check_pixel_budget, sha256_file
from evlf.core.imaging.render import auto_window, to_rgb, window
from evlf.core.types import ImageMeta, LoadedImage

# Malformed header values (wrong VR) are common in the wild and harmless to reading pixels.
warnings.filterwarnings("ignore", message="Invalid value for VR", module="pydicom")


def _str(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _meta(ds: Any) -> ImageMeta:
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    pixel_spacing = None
    if spacing is not None and len(spacing) == 2:
        try:
            pixel_spacing = (float(spacing[0]), float(spacing[1]))
            if min(pixel_spacing) <= 0:
                pixel_spacing = None  # zero spacing means "not calibrated"
        except (TypeError, ValueError):
            pixel_spacing = None
    laterality = _str(ds, "ImageLaterality") or _str(ds, "Laterality")
    sop_class = ds.get("SOPClassUID")
    return ImageMeta(
        modality=_str(ds, "Modality"),
        body_part=_str(ds, "BodyPartExamined"),
        laterality=laterality,
        view=_str(ds, "ViewPosition"),
        pixel_spacing=pixel_spacing,
        photometric=_str(ds, "PhotometricInterpretation"),
        bits_stored=int(ds.BitsStored) if "BitsStored" in ds else None,
        samples_per_pixel=int(ds.SamplesPerPixel) if "SamplesPerPixel" in ds else None,
        sop_class_uid=str(sop_class) if sop_class else None,
        study_uid=_str(ds, "StudyInstanceUID"),
        series_uid=_str(ds, "SeriesInstanceUID"),
        study_description=_str(ds, "StudyDescription"),
        series_description=_str(ds, "SeriesDescription"),
        manufacturer=_str(ds, "Manufacturer"),
    )


def _decoder_problem(ds: Any, exc: Exception) -> str:
    """One line saying which compressed syntax failed and whether a decoder is missing or failed."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    name = getattr(ts, "name", str(ts))
    detail = " ".join(str(exc).split())
    if "all available plugins" in detail or "unable to decode" in detail.lower():
        return f"compressed pixel data ({name}) could not be decoded by any installed decoder: {detail}"
    return (
        f"compressed pixel data ({name}) needs a decoder that is not installed "
        f"(install evlf[dicom-codecs]: pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg): {detail}"
    )


def _render(ds: Any, frame: np.ndarray, original: np.ndarray) -> np.ndarray:
    """8-bit rendering: VOI LUT or window when the file has one, else a percentile window."""
    from pydicom.pixels import apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if frame.ndim == 3:  # colour (pydicom already converted YBR to RGB)
        data = frame
        if data.dtype != np.uint8:
            data = auto_window(data)
        return to_rgb(data)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        rendered = window(original.astype(np.float64), float(_first(ds.WindowCenter)), float(_first(ds.WindowWidth)))
    elif "VOILUTSequence" in ds:
        try:
            rendered = auto_window(np.asarray(apply_voi_lut(original, ds, index=0), dtype=np.float64), 0.0, 100.0)
        except Exception:
            rendered = auto_window(original)
    else:
        rendered = auto_window(original)
    if photometric == "MONOCHROME1":
        rendered = 255 - rendered
    return to_rgb(rendered)


def _first(value: Any) -> Any:
    try:
        return value[0]
    except (TypeError, IndexError, KeyError):
        return value


def load_dicom(path: Path, frame: int | None) -> LoadedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, pixel_array

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise InputError(path, f"not a valid DICOM file ({exc})") from None
    except Exception as exc:
        raise InputError(path, f"corrupt DICOM header ({type(exc).__name__}: {exc})") from None
    if "Rows" not in ds or "Columns" not in ds:
        raise InputError(path, "DICOM file holds no image (no Rows/Columns; e.g. a report or structured data)")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    check_pixel_budget(path, cols, rows, frames, samples)
    index = (frames // 2 if frames > 1 else 0) if frame is None else frame
    if not 0 <= index < frames:
        raise InputError(path, f"frame {index} does not exist (the file has {frames})")
    try:
        full = pydicom.dcmread(path, defer_size="1 KB")
        if "PixelData" not in full and "FloatPixelData" not in full and "DoubleFloatPixelData" not in full:
            raise InputError(path, "DICOM file has image attributes but no pixel data")
        raw = pixel_array(path, index=index if frames > 1 else None)
    except InputError:
        raise
    except (NotImplementedError, RuntimeError) as exc:
        raise InputError(path, _decoder_problem(ds, exc)) from None
    except (ValueError, EOFError, OSError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(path, f"truncated or corrupt DICOM pixel data ({' '.join(str(exc).split())})") from None
    if raw.ndim == 3 and samples == 1 and frames > 1:  # defensive: a whole volume came back
        raw = raw[0]
    if raw.ndim not in (2, 3):
        raise InputError(path, f"unexpected pixel array shape {raw.shape}")
    if raw.ndim == 2:
        original = apply_modality_lut(raw, full)
        if np.issubdtype(np.asarray(original).dtype, np.floating) and np.all(np.mod(original, 1) == 0):
            if original.min() >= -32768 and original.max() <= 32767:
                original = original.astype(np.int16 if original.min() < 0 else np.uint16)
    else:
        original = raw
    rgb = _render(full, raw, np.asarray(original))
    meta = _meta(full)
    if raw.ndim == 3:
        meta = meta.model_copy(update={"photometric": meta.photometric, "samples_per_pixel": raw.shape[2]})
    return LoadedImage(
        path=path,
        format="dicom",
        width=cols,
        height=rows,
        frames=frames,
        frame_index=index,
        sha256=sha256_file(path),
        meta=meta,
        pixels=np.asarray(original),
        rgb=rgb,
    )

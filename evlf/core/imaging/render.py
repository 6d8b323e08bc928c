"""Turn original pixels (any depth, grayscale or colour) into the 8-bit RGB the VLM sees.

This is the one place evlf windows pixels: `window` (linear, a given centre
and width) and `auto_window` (a percentile window for images that carry
none). Working copies are float32 and made once, so a large 16-bit image
costs about four bytes per sample beyond its own array.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Percentiles of a large image are estimated from at most this many evenly spaced samples.
PERCENTILE_SAMPLES = 1 << 22


#: Integer images larger than this many samples are mapped through a table over their dtype's values.
TABLE_MIN_SAMPLES = 1 << 18


def by_table(fn: Callable[[np.ndarray], np.ndarray], values: np.ndarray) -> np.ndarray:
    """`fn(values)` for an elementwise `fn`: on a large 8- or 16-bit integer image, evaluated once per possible value.

    Why: a radiograph has millions of samples but at most 65,536 distinct
    values, so the VOI LUT or window and evlf's window run on a table and the
    image is one lookup (exactly the same result, a fraction of the time).
    """
    if values.dtype.kind not in "iu" or values.dtype.itemsize > 2 or values.size < TABLE_MIN_SAMPLES:
        return fn(values)
    unsigned = np.dtype(f"u{values.dtype.itemsize}")
    domain = np.arange(1 << (8 * values.dtype.itemsize), dtype=unsigned).view(values.dtype)  # index i holds the value whose bits are i
    return np.take(np.asarray(fn(domain)), values.view(unsigned))


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window to 0-255 (DICOM PS3.3 C.11.2.1.2 'LINEAR' without the 0.5 offsets' subtleties)."""
    return by_table(lambda v: _linear_window(v, center, width), values)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    width = max(float(width), 1.0)
    low = float(center) - width / 2.0
    with np.errstate(all="ignore"):  # values beyond float32 saturate; NaN renders black
        out = np.array(values, dtype=np.float32)  # the one working copy
        out -= np.float32(low)
        out *= np.float32(255.0 / width)
        np.clip(out, 0.0, 255.0, out=out)
        out[np.isnan(out)] = 0.0
        out += np.float32(0.5)
        return out.astype(np.uint8)


def _sample(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1)
    step = max(1, flat.size // PERCENTILE_SAMPLES)
    sample = flat[::step]
    if np.issubdtype(sample.dtype, np.floating):
        sample = sample[np.isfinite(sample)]
    return sample


def auto_window(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Percentile window for images that carry none (NaN counts as the low end)."""
    sample = _sample(values)
    if sample.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = (float(v) for v in np.percentile(sample, [low_pct, high_pct]))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo)
    return window(values, (lo + hi) / 2.0, hi - lo)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """8-bit data passes through; deeper data gets a percentile window."""
    if values.dtype == np.uint8:
        return values
    return auto_window(values)


def to_rgb(gray_or_color: np.ndarray) -> np.ndarray:
    """HxW or HxWxC (C = 1, 2, 3, 4) uint8 -> HxWx3 uint8, contiguous."""
    arr = gray_or_color
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.ndim == 3:
        channels = arr.shape[2]
        if channels == 1:
            return np.ascontiguousarray(np.repeat(arr, 3, axis=2))
        if channels == 2:  # gray + alpha
            return np.ascontiguousarray(np.repeat(arr[:, :, :1], 3, axis=2))
        return np.ascontiguousarray(arr[:, :, :3])
    raise ValueError(f"cannot render an array of shape {arr.shape}")

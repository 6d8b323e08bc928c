"""Turn original pixels (any depth, grayscale or colour) into the 8-bit RGB the VLM sees."""

from __future__ import annotations

import numpy as np


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window to 0-255 (DICOM PS3.3 C.11.2.1.2 'LINEAR' without the 0.5 offsets' subtleties)."""
    width = max(float(width), 1.0)
    low = center - width / 2.0
    out = (values.astype(np.float64) - low) / width
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def auto_window(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Percentile window for images that carry none."""
    finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return window(np.nan_to_num(values, nan=lo), (lo + hi) / 2.0, hi - lo)


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

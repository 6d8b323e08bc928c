"""Small pixel-array helpers shared across layers: a percentile window, a PNG data URL."""

from __future__ import annotations

import base64
import io

import numpy as np


def percentile_window(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """float32 in [0, 1], windowed between the `low` and `high` percentiles (robust to 16-bit outliers and HU)."""
    a = np.asarray(values, dtype=np.float32)
    lo, hi = np.percentile(a, (low, high))
    return np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def png_data_url(pixels: np.ndarray, *, optimize: bool = False) -> str:
    """A `data:image/png;base64,...` URL of an 8-bit gray, RGB or RGBA array (what browsers and chat servers take)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(buffer, format="PNG", optimize=optimize)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

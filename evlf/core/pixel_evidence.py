"""Pixel measurements routing uses, made on a downsampled 8-bit rendering.

Colour vs grayscale, spatial structure (noise has none), a fundus-like disc on
black, and stain-like brightfield microscopy (hematoxylin-stained nuclei
through `skimage.color.rgb2hed`, no black regions). Results are cached on the
rendering array so several specialties scoring one study share the work.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np


def _thumbnail(rgb: np.ndarray, max_side: int = 384) -> np.ndarray:
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / max_side)))
    return np.ascontiguousarray(rgb[::step, ::step, :3]).astype(np.float32) / 255.0


def _structure(gray: np.ndarray) -> float:
    if gray.size < 4 or float(gray.std()) < 1e-6:
        return 0.0
    a, b = gray[:, :-1].ravel(), gray[:, 1:].ravel()
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _fundus_score(rgb: np.ndarray, gray: np.ndarray) -> float:
    """A bright, reddish, disc-shaped field on a black surround (colour fundus photography)."""
    h, w = gray.shape
    c = max(2, min(h, w) // 12)
    corners = np.concatenate([gray[:c, :c].ravel(), gray[:c, -c:].ravel(), gray[-c:, :c].ravel(), gray[-c:, -c:].ravel()])
    if corners.mean() > 0.08:
        return 0.0
    field = gray > 0.1
    if field.mean() < 0.3:
        return 0.0
    ys, xs = np.nonzero(field)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    radius = max(ys.max() - ys.min(), xs.max() - xs.min()) / 2
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    union = np.logical_or(disc, field).sum()
    disc_iou = np.logical_and(disc, field).sum() / union if union else 0.0
    r, g, b = (float(rgb[..., i][field].mean()) for i in range(3))
    reddish = r > 1.5 * g and r > 1.5 * b  # fundus R/G is about 2-3; brown fur or wood is about 1.3
    if disc_iou < 0.8 or not reddish:
        return 0.0
    return float(min(1.0, 0.5 + (disc_iou - 0.8) * 2.5))


#: Hematoxylin concentration (skimage's rgb2hed units: optical density / ln(1e6)) that marks a nucleus.
#: 0.15 optical density, the threshold this heuristic was tuned with.
_NUCLEUS_HEMATOXYLIN = 0.15 / float(np.log(1e6))


def _stain_score(rgb: np.ndarray, dark_fraction: float) -> float:
    """Brightfield stained tissue: bright overall, no black regions, many small hematoxylin-dominant blobs.

    Blue sky is hematoxylin-coloured too, but it fills the frame and is darker
    than a lit slide; brown fur has no hematoxylin at all.
    """
    if dark_fraction > 0.05 or float(rgb.mean()) < 0.45:
        return 0.0
    green = ((rgb[..., 1] > rgb[..., 0] + 0.03) & (rgb[..., 1] > rgb[..., 2] + 0.03)).mean()
    if green > 0.05:
        return 0.0
    from skimage.color import rgb2hed

    hed = rgb2hed(np.clip(rgb, 1 / 255, 1.0))  # Ruifrok & Johnston colour deconvolution
    hema, eosin, dab = hed[..., 0], hed[..., 1], hed[..., 2]
    nuclei = (hema > _NUCLEUS_HEMATOXYLIN) & (hema > eosin) & (hema > dab)
    fraction = float(nuclei.mean())
    if not 0.03 <= fraction <= 0.7:
        return 0.0
    from scipy import ndimage

    labels, _ = ndimage.label(nuclei)
    sizes = np.bincount(labels.ravel())[1:]
    scale = (384 * 384) / max(1, rgb.shape[0] * rgb.shape[1])  # blobs per thumbnail of the reference size
    blobs = int(((sizes >= 4) & (sizes <= 1500)).sum()) * scale
    if blobs < 60:
        return 0.0
    return float(min(1.0, 0.5 + blobs / 1000))


_CACHE: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}


def pixel_facts(rgb: np.ndarray, photometric: str) -> dict[str, Any]:
    """The pixel measurements, cached on the rendering array so several specialties share the work."""
    key = id(rgb)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is rgb and hit[1]["photometric"] == photometric:
        return hit[1]
    facts = _measure_pixels(rgb, photometric)
    try:
        _CACHE[key] = (weakref.ref(rgb), facts)
    except TypeError:  # pragma: no cover - arrays that cannot be weakly referenced
        pass
    if len(_CACHE) > 256:
        for k in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
            _CACHE.pop(k, None)
    return facts


def _measure_pixels(rgb: np.ndarray, photometric: str) -> dict[str, Any]:
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    thumb = _thumbnail(rgb)
    # per-pixel mean, max and min of the three channels as elementwise ufuncs: numpy's reductions over a length-3
    # last axis cost about ten times as much (3 ms of routing a 128x128 CT); the values are the same
    r, g, b = thumb[..., 0], thumb[..., 1], thumb[..., 2]
    gray = (r + g + b) / 3
    high, low = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    chroma = high - low
    colour_fraction = float((chroma > 0.08).mean())
    colour = colour_fraction > 0.05 and not photometric.upper().startswith("MONOCHROME")
    dark = float((high < 0.2).mean())
    white = float((low > 0.8).mean())
    structure = _structure(gray)
    fundus = _fundus_score(thumb, gray) if colour and structure >= 0.5 else 0.0
    stain = _stain_score(thumb, dark) if colour and structure >= 0.5 and fundus == 0 else 0.0
    return {
        "photometric": photometric,
        "colour": colour,
        "colour_fraction": colour_fraction,
        "structure": structure,
        "dark_fraction": dark,
        "white_fraction": white,
        "fundus": fundus,
        "stain": stain,
    }

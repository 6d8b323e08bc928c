"""The classical refiner: box-initialised segmentation with no weights, the offline default.

Each box is segmented in a crop around it: the box's inside is probable
lesion, a band around it is probable background (a model's box may cut the
lesion, so the mask may grow past it), and the crop's rim is background. The
crop is windowed by its own percentiles, so 16-bit and HU data segment as well
as 8-bit.

Methods, measured by benchmarks/refine.py on the lesion test set with
jittered boxes (mean IoU to the truth, before 0.55; tuned on the train split):
`auto` 0.754 (default), watershed 0.72, seeded_watershed 0.73, GrabCut 0.69,
random walker 0.56. `watershed` floods the gradient from the box core; it
stops at a cyst's inner wall, so `seeded_watershed` also seeds every box pixel
far more unusual than the surrounding background (a cyst's rim); `auto` runs
both, grows the better one by the unusual pixels around it, and keeps the
candidate whose inside is most unlike its immediate outside.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from evlf.core.errors import ConfigError
from evlf.core.pixels import percentile_window
from evlf.core.refine import Refinement, Refiner
from evlf.core.types import Box, LoadedImage
from evlf.plugins.refiners.common import check_boxes, image_grid, pixel_span, refinement

METHODS = ("auto", "watershed", "seeded_watershed", "grabcut", "random_walker")

CONTEXT = 0.75  # crop margin around the box, in box sizes
BAND = 0.4  # probable-background band around the box, in box sizes
CORE = 0.3  # sure-lesion core at the box centre, in box sizes
SEED_PERCENTILE = 99.9  # a box pixel seeds the lesion when more unusual than this share of the background...
SEED_MIN_SCORE = 4.0  # ...and at least this many robust deviations from it,
SEED_MIN_SHARE = 0.02  # ...in a blob of at least this share of the box
GROW_LEVEL = 0.7  # growing adds pixels at least this unusual relative to the region's median
#: A crop is segmented at most this many pixels on its long side and its mask scaled back (nearest). A box on a
#: 1841x1955 chest radiograph makes a crop of ~1,500 px, where skimage's watershed took seconds per box; the lesion
#: set's crops (images of 128-256 px) are below it and segment at full resolution.
WORK_SIDE = 256


class _Layout:
    """Where the crop, the box, its band and its core lie, in crop coordinates."""

    def __init__(self, box: Box, height: int, width: int) -> None:
        bw, bh = box.width, box.height
        grow = lambda f: Box(  # noqa: E731
            x0=max(0.0, box.x0 - f * bw),
            y0=max(0.0, box.y0 - f * bh),
            x1=min(float(width), box.x1 + f * bw),
            y1=min(float(height), box.y1 + f * bh),
        )
        self.crop = pixel_span(grow(CONTEXT), height, width)
        r0, _, c0, _ = self.crop

        def local(b: Box) -> tuple[slice, slice]:
            y0, y1, x0, x1 = pixel_span(b, height, width)
            return slice(y0 - r0, y1 - r0), slice(x0 - c0, x1 - c0)

        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        core = Box(
            x0=cx - CORE * bw / 2, y0=cy - CORE * bh / 2, x1=cx + CORE * bw / 2, y1=cy + CORE * bh / 2
        )
        self.box, self.band, self.core = local(box), local(grow(BAND)), local(core)
        self.shape = (self.crop[1] - self.crop[0], self.crop[3] - self.crop[2])

    def scaled(self, shape: tuple[int, int]) -> _Layout:
        """The same layout on the crop resized to `shape` (rows, columns)."""
        fy, fx = shape[0] / self.shape[0], shape[1] / self.shape[1]

        def span(s: slice, f: float, n: int) -> slice:
            start = min(n - 1, int(s.start * f))
            return slice(start, max(start + 1, min(n, round(s.stop * f))))

        out = object.__new__(_Layout)
        out.crop, out.shape = self.crop, shape
        out.box, out.band, out.core = ((span(r, fy, shape[0]), span(c, fx, shape[1])) for r, c in (self.box, self.band, self.core))
        return out


def _grabcut(crop: np.ndarray, lay: _Layout) -> np.ndarray:
    import cv2

    img = (crop * 255).astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img)
    gc = np.full(lay.shape, cv2.GC_BGD, np.uint8)
    gc[lay.band] = cv2.GC_PR_BGD
    gc[lay.box] = cv2.GC_PR_FGD
    gc[lay.core] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(img, gc, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def _markers(lay: _Layout) -> np.ndarray:
    """1: background (beyond the band; the crop's frame when the band fills the crop), 0: unknown, 2: lesion core."""
    markers = np.ones(lay.shape, np.int32)
    markers[lay.band] = 0
    if not (markers == 1).any():
        markers[[0, -1], :] = 1
        markers[:, [0, -1]] = 1
    markers[lay.core] = 2
    return markers


def _watershed(crop: np.ndarray, lay: _Layout) -> np.ndarray:
    from skimage.filters import gaussian, sobel
    from skimage.segmentation import watershed

    smooth = gaussian(crop, sigma=1.0, channel_axis=-1 if crop.ndim == 3 else None)
    grad = sobel(smooth.mean(axis=2) if smooth.ndim == 3 else smooth)
    return watershed(grad, _markers(lay)) == 2


def _random_walker(crop: np.ndarray, lay: _Layout) -> np.ndarray:
    import warnings

    from skimage.segmentation import random_walker

    with warnings.catch_warnings():  # its probability tolerance warning says nothing about the labels
        warnings.filterwarnings("ignore", message="The probability range is outside")
        labels = random_walker(crop, _markers(lay), beta=130, mode="cg_j", channel_axis=-1 if crop.ndim == 3 else None)
    return labels == 2


def _outlier_map(crop: np.ndarray, lay: _Layout, sigma: float | None = None) -> np.ndarray:
    """How unlike the surrounding background each pixel is (robust z-score, Mahalanobis for colour)."""
    from skimage.filters import gaussian

    sigma = max(1.0, 0.02 * min(lay.shape)) if sigma is None else sigma
    smooth = gaussian(crop, sigma=sigma, channel_axis=-1 if crop.ndim == 3 else None) if sigma > 0 else crop
    bg = _markers(lay) == 1
    if smooth.ndim == 2:
        ref = smooth[bg]
        med = np.median(ref)
        mad = 1.4826 * np.median(np.abs(ref - med)) + 1e-3
        return np.abs(smooth - med) / mad
    ref = smooth[bg].reshape(-1, 3)
    mean = ref.mean(axis=0)
    cov = np.cov(ref, rowvar=False) + np.eye(3) * 1e-4
    diff = smooth.reshape(-1, 3) - mean
    d2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    return np.sqrt(d2).reshape(lay.shape)


def _seeded_watershed(crop: np.ndarray, lay: _Layout) -> np.ndarray:
    """Watershed whose lesion seeds are the core plus the box's pixels more unusual than nearly all background."""
    from scipy.ndimage import label
    from skimage.filters import gaussian, sobel
    from skimage.segmentation import watershed

    d = _outlier_map(crop, lay, sigma=1.0)  # little blur: seeds must not cross the lesion's edge
    markers = _markers(lay)
    bg = markers == 1
    t = max(SEED_MIN_SCORE, float(np.percentile(d[bg], SEED_PERCENTILE))) if bg.any() else np.inf
    inner = np.zeros(lay.shape, bool)
    inner[lay.box] = True
    seeds = inner & (d > t) & (markers != 1)
    parts, n = label(seeds)
    if n:  # specks of noise are no lesion: keep seed blobs of a few percent of the box
        sizes = np.bincount(parts.ravel())
        big = np.flatnonzero(sizes >= max(4.0, SEED_MIN_SHARE * inner.sum()))
        markers[np.isin(parts, big[big > 0])] = 2
    smooth = gaussian(crop, sigma=1.0, channel_axis=-1 if crop.ndim == 3 else None)
    grad = sobel(smooth.mean(axis=2) if smooth.ndim == 3 else smooth)
    return watershed(grad, markers) == 2


def _fit(d: np.ndarray, mask: np.ndarray) -> float:
    """How well a mask separates unusual pixels from usual ones: mean outlier score inside minus just outside."""
    from scipy.ndimage import binary_dilation

    if not mask.any():
        return -np.inf
    shell = binary_dilation(mask, iterations=2) & ~mask
    return float(d[mask].mean() - (d[shell].mean() if shell.any() else 0.0))


def _grow(region: np.ndarray, crop: np.ndarray, lay: _Layout) -> np.ndarray:
    """The region plus the band's pixels connected to it that are nearly as unusual as it is (a cyst's rim, a blurred edge)."""
    from scipy.ndimage import binary_fill_holes, label

    bg = _markers(lay) == 1
    if not region.any() or not bg.any():
        return region
    d = _outlier_map(crop, lay, sigma=1.0)
    t = max(GROW_LEVEL * float(np.median(d[region])), float(np.percentile(d[bg], 99)))
    inband = np.zeros_like(region)
    inband[lay.band] = True
    parts, _ = label(((d > t) & inband) | region)
    hit = np.unique(parts[region])
    return binary_fill_holes(np.isin(parts, hit[hit > 0]))


def _auto(crop: np.ndarray, lay: _Layout) -> np.ndarray:
    """Both watersheds and the better one grown; keep the mask that best separates unusual from usual pixels."""
    d = _outlier_map(crop, lay)
    cands = [_keep_lesion(seg(crop, lay), lay) for seg in (_watershed, _seeded_watershed)]
    cands.append(_grow(max(cands, key=lambda m: _fit(d, m)), crop, lay))
    return max(cands, key=lambda m: _fit(d, m))


_SEGMENT = {
    "auto": _auto,
    "watershed": _watershed,
    "seeded_watershed": _seeded_watershed,
    "grabcut": _grabcut,
    "random_walker": _random_walker,
}


def _keep_lesion(mask: np.ndarray, lay: _Layout) -> np.ndarray:
    """The connected parts touching the box core, with holes (a cyst's lumen) filled."""
    from scipy.ndimage import binary_fill_holes, label

    parts, n = label(mask)
    if n == 0:
        return mask
    hit = np.unique(parts[lay.core])
    hit = hit[hit > 0]
    if hit.size == 0:  # nothing at the centre: the largest part inside the box
        sizes = np.bincount(parts[lay.box].ravel(), minlength=n + 1)
        sizes[0] = 0
        if sizes.max() == 0:
            return np.zeros_like(mask)
        hit = np.array([int(sizes.argmax())])
    return binary_fill_holes(np.isin(parts, hit))


def _segment_bounded(method: str, crop: np.ndarray, lay: _Layout) -> np.ndarray:
    """The lesion mask on the crop, computed on a copy at most WORK_SIDE pixels long (area-averaged) and scaled back."""
    scale = WORK_SIDE / max(lay.shape)
    if scale >= 1.0:
        return _keep_lesion(_SEGMENT[method](crop, lay), lay)
    import cv2

    shape = (max(1, round(lay.shape[0] * scale)), max(1, round(lay.shape[1] * scale)))
    small = cv2.resize(np.ascontiguousarray(crop, dtype=np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    small_lay = lay.scaled(shape)
    mask = _keep_lesion(_SEGMENT[method](small, small_lay), small_lay)
    return cv2.resize(mask.astype(np.uint8), (lay.shape[1], lay.shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def _contrast(crop: np.ndarray, mask: np.ndarray) -> float:
    """How distinct the mask is from its surroundings: 1 - exp(-|mean difference| / pooled std)."""
    gray = crop.mean(axis=2) if crop.ndim == 3 else crop
    if mask.all() or not mask.any():
        return 0.0
    a, b = gray[mask], gray[~mask]
    pooled = np.sqrt((a.var() + b.var()) / 2) + 1e-3
    return float(1.0 - np.exp(-abs(a.mean() - b.mean()) / pooled))


class ClassicalRefiner(Refiner):
    """Weight-free refinement; `method` is one of METHODS."""

    name: ClassVar[str] = "classical"

    def __init__(self, method: str = "auto") -> None:
        if method not in _SEGMENT:
            raise ConfigError(f"unknown classical refiner method {method!r} (known: {', '.join(METHODS)})")
        self.method = method

    def refine(self, image: LoadedImage, boxes: list[Box]) -> list[Refinement]:
        check_boxes(image, boxes)
        grid = image_grid(image)
        out: list[Refinement] = []
        for box in boxes:
            lay = _Layout(box, image.height, image.width)
            r0, r1, c0, c1 = lay.crop
            crop = percentile_window(grid[r0:r1, c0:c1])
            local = _segment_bounded(self.method, crop, lay)
            full = np.zeros((image.height, image.width), bool)
            full[r0:r1, c0:c1] = local
            out.append(refinement(box, full, _contrast(crop, local)))
        return out

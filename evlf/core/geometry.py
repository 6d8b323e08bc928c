"""Box geometry and the coordinate conventions VLM families emit.

Each family draws boxes in its own frame: Qwen2.5-VL in absolute pixels of the
image its processor resized, Qwen2-VL and InternVL on a 0-1000 grid, others in
0-1 fractions. A `BoxCodec` maps between such a frame and original pixels, so
the rest of evlf only ever sees original-pixel `Box`es.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from evlf.core.types import Box

Size = tuple[int, int]  # (width, height)


BoxLike = Sequence[float]  # [x0, y0, x1, y1]


def box_iou_matrix(a: Sequence[BoxLike] | np.ndarray, b: Sequence[BoxLike] | np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (rows) with every box of `b` (columns); 0 where a union is empty."""
    p = np.asarray(a, dtype=float).reshape(-1, 4)
    t = np.asarray(b, dtype=float).reshape(-1, 4)
    ix = np.clip(np.minimum(p[:, None, 2], t[None, :, 2]) - np.maximum(p[:, None, 0], t[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(p[:, None, 3], t[None, :, 3]) - np.maximum(p[:, None, 1], t[None, :, 1]), 0, None)
    inter = ix * iy
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = area_p[:, None] + area_t[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when either has no area."""
    return float(box_iou_matrix([a.as_list()], [b.as_list()])[0, 0])


def clip(box: Box, size: Size) -> Box:
    """Clip a box to an image of `size` (width, height)."""
    w, h = size
    x0, x1 = sorted((min(max(box.x0, 0.0), w), min(max(box.x1, 0.0), w)))
    y0, y1 = sorted((min(max(box.y0, 0.0), h), min(max(box.y1, 0.0), h)))
    return Box(x0=x0, y0=y0, x1=x1, y1=y1, image_index=box.image_index)


def scale(box: Box, src: Size, dst: Size) -> Box:
    """Map a box from a `src` pixel grid to a `dst` grid of the same picture."""
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    return Box(x0=box.x0 * sx, y0=box.y0 * sy, x1=box.x1 * sx, y1=box.y1 * sy, image_index=box.image_index)


def inside(box: Box, size: Size, tolerance: float = 0.5) -> bool:
    """True when the box lies within the image (with a sub-pixel tolerance)."""
    w, h = size
    return box.x0 >= -tolerance and box.y0 >= -tolerance and box.x1 <= w + tolerance and box.y1 <= h + tolerance


class BoxConvention(str, Enum):
    """The frame a model family's boxes are drawn in."""

    PIXELS = "pixels"  # original image pixels
    RESIZED_PIXELS = "resized_pixels"  # pixels of the processor-resized image (Qwen2.5-VL, Qwen3-VL abs.)
    GRID_1000 = "grid_1000"  # 0-1000 on both axes (Qwen2-VL, InternVL, Qwen3-VL)
    UNIT = "unit"  # 0-1 fractions


@dataclass(frozen=True)
class BoxCodec:
    """Converts boxes between a family's convention and original pixels for one image.

    `resized` is the (width, height) the processor fed to the model; only the
    RESIZED_PIXELS convention needs it.
    """

    convention: BoxConvention
    original: Size
    resized: Size | None = None

    def _frame(self) -> tuple[float, float]:
        if self.convention is BoxConvention.PIXELS:
            return float(self.original[0]), float(self.original[1])
        if self.convention is BoxConvention.RESIZED_PIXELS:
            if self.resized is None:
                raise ValueError("the resized_pixels convention needs the processor's resized size")
            return float(self.resized[0]), float(self.resized[1])
        if self.convention is BoxConvention.GRID_1000:
            return 1000.0, 1000.0
        return 1.0, 1.0

    def decode(self, coords: Sequence[float], image_index: int = 0, clip_to_image: bool = True) -> Box:
        """Model coordinates [x0, y0, x1, y1] -> a Box in original pixels."""
        if len(coords) != 4:
            raise ValueError(f"a box needs 4 numbers, got {len(coords)}")
        x0, y0, x1, y1 = (float(c) for c in coords)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError("box coordinates must be finite")
        fw, fh = self._frame()
        sx, sy = self.original[0] / fw, self.original[1] / fh
        x0, x1 = sorted((x0 * sx, x1 * sx))
        y0, y1 = sorted((y0 * sy, y1 * sy))
        box = Box(x0=x0, y0=y0, x1=x1, y1=y1, image_index=image_index)
        return clip(box, self.original) if clip_to_image else box

    def encode(self, box: Box, precision: int | None = None) -> list[float]:
        """A Box in original pixels -> coordinates in this convention (rounded when `precision` is given)."""
        fw, fh = self._frame()
        sx, sy = fw / self.original[0], fh / self.original[1]
        out = [box.x0 * sx, box.y0 * sy, box.x1 * sx, box.y1 * sy]
        if precision is not None:
            out = [round(v, precision) if precision > 0 else float(round(v)) for v in out]
        return out

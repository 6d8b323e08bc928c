"""What every refiner shares: box checks, the pixels to segment, and turning a mask into a Refinement."""

from __future__ import annotations

import numpy as np

from evlf.core.errors import InputError
from evlf.core.geometry import inside, iou
from evlf.core.refine import Refinement
from evlf.core.types import Box, LoadedImage, Mask


def check_boxes(image: LoadedImage, boxes: list[Box]) -> None:
    """Refuse a box of zero area or one outside the image, naming the box and the image size."""
    size = (image.width, image.height)
    for i, b in enumerate(boxes):
        coords = f"[{b.x0:g}, {b.y0:g}, {b.x1:g}, {b.y1:g}]"
        if b.width <= 0 or b.height <= 0:
            raise InputError(image.path, f"box {i} {coords} has zero area")
        if not inside(b, size):
            raise InputError(image.path, f"box {i} {coords} lies outside the {image.width}x{image.height} image")


def image_grid(image: LoadedImage) -> np.ndarray:
    """The original pixels as float32, HxW (grayscale) or HxWx3 (colour); 16-bit and HU values kept as numbers."""
    px = np.asarray(image.pixels)
    if px.ndim == 3:
        px = px[..., :3] if px.shape[2] >= 3 else px[..., 0]
    if px.shape[:2] != (image.height, image.width):
        raise InputError(image.path, f"pixels are {px.shape[1]}x{px.shape[0]} but the image says {image.width}x{image.height}")
    return np.nan_to_num(px.astype(np.float32))


def pixel_span(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """The integer pixel rows/columns a box touches: (r0, r1, c0, c1), half-open, within the image."""
    c0 = int(np.clip(np.floor(box.x0), 0, width - 1))
    r0 = int(np.clip(np.floor(box.y0), 0, height - 1))
    c1 = int(np.clip(np.ceil(box.x1), c0 + 1, width))
    r1 = int(np.clip(np.ceil(box.y1), r0 + 1, height))
    return r0, r1, c0, c1


def tight_box(mask: np.ndarray, image_index: int = 0) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(x0=float(cols[0]), y0=float(rows[0]), x1=float(cols[-1] + 1), y1=float(rows[-1] + 1), image_index=image_index)


def refinement(model_box: Box, mask: np.ndarray, score: float) -> Refinement:
    """Mask (full image grid) -> Refinement; an empty mask gives a zero-area box at the model box's centre, score 0, agreement 0."""
    box = tight_box(mask, model_box.image_index)
    if box is None:
        cx, cy = (model_box.x0 + model_box.x1) / 2, (model_box.y0 + model_box.y1) / 2
        empty = Box(x0=cx, y0=cy, x1=cx, y1=cy, image_index=model_box.image_index)
        return Refinement(mask=Mask.from_array(mask, model_box.image_index), box=empty, score=0.0, agreement=0.0)
    agreement = min(1.0, max(0.0, iou(model_box, box)))
    score = float(min(1.0, max(0.0, score)))
    return Refinement(mask=Mask.from_array(mask, model_box.image_index), box=box, score=score, agreement=agreement)

"""A batch's resize, rescale and normalise done up front, so the image processor skips its per-image steps.

Why: transformers' PIL image processors (the ones that work without torchvision)
run resize, rescale and normalise image by image through several layers of
helpers; at batch 32 that was most of the backend's time outside
`model.generate` (benchmarks/backends.py). Here each image is resized by the
same PIL call the processor would make, then the batch is rescaled and
normalised by one lookup per image size in a 256-value table computed with the
processor's own dtypes and order of operations, so the pixels are bit-identical (tests/plugins/backends/
test_pixels.py). The processor is then called with those steps turned off and
still does what is specific to its model (the token counts, CLIP's layout); for
Qwen2-VL, qwen_batch.py does that part too, on the same-size groups made here.

Only processors whose steps are exactly resize -> rescale -> normalise take this
path: Qwen2-VL's (its own `smart_resize` target) and fixed-size CLIP/LLaVA ones
without cropping or padding. Any other processor gets the images as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: processors whose only per-image steps are resize (to a fixed height x width), rescale and normalise
FIXED_SIZE = ("CLIPImageProcessorPil", "LlavaImageProcessorPil")
#: processors that resize with Qwen-VL's smart_resize, then rescale, normalise and patch
QWEN = ("Qwen2VLImageProcessorPil",)

SKIPPED_STEPS = {"do_resize": False, "do_rescale": False, "do_normalize": False}
#: the processor's keyword arguments for pixels made here: those steps off, channels first
PREPARED = {**SKIPPED_STEPS, "input_data_format": "channels_first"}


def _get(size: Any, key: str) -> Any:
    return size.get(key) if hasattr(size, "get") else getattr(size, key, None)


def target_size(processor: Any) -> Any:
    """(height, width) -> resized (height, width) for this image processor, or None where its steps are not only resize/rescale/normalise."""
    name = type(processor).__name__
    size = getattr(processor, "size", None) or {}
    if name in QWEN and _get(size, "shortest_edge") and _get(size, "longest_edge"):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        factor = int(processor.patch_size) * int(processor.merge_size)
        low, high = int(_get(size, "shortest_edge")), int(_get(size, "longest_edge"))
        return lambda h, w: smart_resize(h, w, factor=factor, min_pixels=low, max_pixels=high)
    plain = not getattr(processor, "do_center_crop", False) and not getattr(processor, "do_pad", False)
    if name in FIXED_SIZE and plain and _get(size, "height") and _get(size, "width"):
        fixed = (int(_get(size, "height")), int(_get(size, "width")))
        return lambda h, w: fixed
    return None


def _value_table(processor: Any) -> np.ndarray:
    """(256, 3) float32: what transformers' rescale (float64 product, then float32) and normalize ((x - mean) / std in float32) make of each 8-bit value per channel."""
    values = (np.arange(256, dtype=np.float64) * processor.rescale_factor).astype(np.float32)[:, None]
    mean = np.asarray(processor.image_mean, dtype=np.float32)
    std = np.asarray(processor.image_std, dtype=np.float32)
    return np.broadcast_to((values - mean) / std, (256, 3))  # a scalar mean/std serves all three channels


PixelGroups = list[tuple[list[int], np.ndarray]]


def pixel_groups(processor: Any, images: list[np.ndarray]) -> PixelGroups | None:
    """The images resized, rescaled and normalised as `processor` would, as (indices, N x 3 x H x W float32) per size.

    `images` are HxWx3 uint8 arrays. None when the processor does more than
    those steps (or is configured to skip them): then it runs as usual.
    """
    target = target_size(processor)
    if target is None or not images or not all(getattr(processor, k, False) for k in SKIPPED_STEPS):
        return None
    from PIL import Image

    resample = processor.resample
    resized = []
    for image in images:
        height, width = target(image.shape[0], image.shape[1])
        if (height, width) == image.shape[:2]:
            resized.append(image)
        else:  # the processor's own call: transformers.image_transforms.resize
            resized.append(np.asarray(Image.fromarray(image).resize((width, height), resample=resample, reducing_gap=None)))
    table = np.ascontiguousarray(_value_table(processor).T)  # channel x value
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(resized):
        by_shape.setdefault(image.shape, []).append(i)
    groups: PixelGroups = []
    for indices in by_shape.values():
        batch = np.stack([resized[i] for i in indices])
        pixels = np.empty((len(indices), 3, *batch.shape[1:3]), dtype=np.float32)
        for c in range(3):  # one lookup per channel, written channels-first (a third of a fancy-indexed gather's time)
            np.take(table[c], batch[..., c], out=pixels[:, c])
        groups.append((indices, pixels))
    return groups


def split_groups(groups: PixelGroups) -> list[np.ndarray]:
    """The grouped images back in their order, one channels-first array each."""
    out: dict[int, np.ndarray] = {}
    for indices, pixels in groups:
        out.update(zip(indices, pixels, strict=True))
    return [out[i] for i in range(len(out))]


def prepare_pixels(processor: Any, images: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, Any]] | None:
    """Channels-first float32 images, resized, rescaled and normalised as `processor` would, and the kwargs that skip those steps.

    None when the processor does more than those steps: then it runs as usual.
    """
    groups = pixel_groups(processor, images)
    if groups is None:
        return None
    return split_groups(groups), dict(PREPARED)

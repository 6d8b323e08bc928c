"""Qwen2-VL's processor call for a whole batch in a few array operations.

Why: with the pixels already prepared (pixels.py), what transformers' Qwen2-VL
processor still does image by image (patching each image, counting its
placeholder tokens, merging its keyword arguments, checking its special
tokens) was about half of the backend's own time at batch 32
(benchmarks/backends.py). Here images of one shape are patched together with
the same reshape and transpose as the image processor's `patchify`, each
image's placeholder is expanded by the processor's own
`get_text_with_replacements`, and the texts go through the tokenizer in one
call. The result equals the processor's output key for key
(tests/plugins/backends/test_pixels.py); any other processor, or a batch
whose placeholders and images do not pair up, takes the processor's path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evlf.plugins.backends.pixels import PixelGroups

#: processors whose call is exactly: image processor, placeholder expansion by image_grid_thw, tokenizer
QWEN_PROCESSORS = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor")
QWEN_IMAGE_PROCESSORS = ("Qwen2VLImageProcessorPil",)


def qwen_patches(image_processor: Any, groups: PixelGroups) -> tuple[np.ndarray, np.ndarray]:
    """(pixel_values, image_grid_thw) as the image processor's `patchify` makes them, image by image in order.

    Each group of same-size images is patched by one strided copy straight
    into the output (a second batch-sized array costs more in fresh pages than
    the copy itself).
    """
    p, m, t = int(image_processor.patch_size), int(image_processor.merge_size), int(image_processor.temporal_patch_size)
    n_images = sum(len(indices) for indices, _ in groups)
    grids = np.empty((n_images, 3), dtype=np.int64)
    for indices, pixels in groups:
        grids[indices] = (1, pixels.shape[2] // p, pixels.shape[3] // p)
    counts = grids[:, 1] * grids[:, 2]
    starts = np.concatenate([[0], np.cumsum(counts)])
    channels = groups[0][1].shape[1]
    out = np.empty((int(starts[-1]), channels * t * p * p), dtype=np.float32)
    for indices, pixels in groups:
        n, _, height, width = pixels.shape
        blocks = pixels.reshape(n, channels, height // p // m, m, p, width // p // m, m, p).transpose(0, 2, 5, 3, 6, 1, 4, 7)
        blocks = np.broadcast_to(blocks[:, :, :, :, :, :, None], (*blocks.shape[:6], t, p, p))
        if indices == list(range(indices[0], indices[0] + n)):  # consecutive images: one copy
            out[starts[indices[0]] : starts[indices[-1] + 1]].reshape(blocks.shape)[...] = blocks
            continue
        for j, i in enumerate(indices):
            out[starts[i] : starts[i + 1]].reshape(blocks.shape[1:])[...] = blocks[j]
    return out, grids


def qwen_inputs(processor: Any, texts: list[str], groups: PixelGroups) -> Any | None:
    """The processor's inputs (input_ids, attention_mask, pixel_values, image_grid_thw) for prepared pixels, or None."""
    if type(processor).__name__ not in QWEN_PROCESSORS or type(processor.image_processor).__name__ not in QWEN_IMAGE_PROCESSORS:
        return None
    if not hasattr(processor, "get_text_with_replacements"):  # a transformers without it: the processor's own path
        return None
    token, video = processor.image_token, getattr(processor, "video_token", None)
    n_images = sum(len(indices) for indices, _ in groups)
    if not n_images or sum(text.count(token) for text in texts) != n_images or (video and any(video in text for text in texts)):
        return None
    import torch

    values, grids = qwen_patches(processor.image_processor, groups)
    per_image = grids.prod(axis=1) // int(processor.image_processor.merge_size) ** 2
    expanded, _ = processor.get_text_with_replacements(list(texts), [token * int(n) for n in per_image])
    inputs = processor.tokenizer(expanded, padding=True, return_tensors="pt")
    inputs["pixel_values"] = torch.from_numpy(values)
    inputs["image_grid_thw"] = torch.from_numpy(grids)
    return inputs

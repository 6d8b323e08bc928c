"""Refiner test fixtures: small images with known lesions built in memory, and a tiny random SAM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from evlf.core.types import Box, LoadedImage


def loaded(pixels: np.ndarray, name: str = "synthetic.png") -> LoadedImage:
    """A LoadedImage over `pixels` (any depth), with an 8-bit RGB rendering on the same grid."""
    px = np.asarray(pixels)
    gray = px if px.ndim == 2 else px[..., :3].mean(axis=2)
    lo, hi = float(gray.min()), float(gray.max())
    if px.ndim == 3 and px.dtype == np.uint8:
        rgb = px[..., :3].copy()
    else:
        g = np.round((gray - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, axis=2)
    return LoadedImage(
        path=Path(name),
        format="png",
        width=px.shape[1],
        height=px.shape[0],
        sha256=hashlib.sha256(px.tobytes() + str(px.shape).encode()).hexdigest(),
        pixels=px,
        rgb=np.ascontiguousarray(rgb),
    )


def disc_image(
    h: int, w: int, cy: float, cx: float, r: float, seed: int = 0, base: float = 100.0, lesion: float = 160.0, noise: float = 6.0
) -> tuple[np.ndarray, np.ndarray]:
    """A float image with a disc of value `lesion` on `base` plus noise, and the disc's mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img = np.where(mask, lesion, base) + rng.normal(0, noise, (h, w))
    return img, mask


def truth_box(mask: np.ndarray) -> Box:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return Box(x0=cols[0], y0=rows[0], x1=cols[-1] + 1, y1=rows[-1] + 1)


class Kit:
    """The helpers above, handed to tests as one fixture."""

    loaded = staticmethod(loaded)
    disc_image = staticmethod(disc_image)
    truth_box = staticmethod(truth_box)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


def build_tiny_sam(seed: int = 0):  # noqa: ANN201 - segment_anything's Sam
    """A small SAM from the package's own classes, random weights: 64 px input, 4x4 embedding grid."""
    from functools import partial

    import torch

    from evlf.plugins.refiners.tv_shim import import_segment_anything

    import_segment_anything()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim, size, patch = 32, 64, 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=size, patch_size=patch, embed_dim=48, depth=2, num_heads=2, mlp_ratio=2.0,
            out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=2, global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim, image_embedding_size=(size // patch, size // patch), input_image_size=(size, size), mask_in_chans=8
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim, iou_head_depth=2, iou_head_hidden_dim=32,
        ),
    )
    return sam.eval()


@pytest.fixture(scope="session")
def tiny_sam():  # noqa: ANN201
    return build_tiny_sam()


@pytest.fixture(scope="session")
def tiny_sam_builder():  # noqa: ANN201
    return build_tiny_sam

"""The Segment Anything refiner: every box of an image prompts one shared image embedding.

The image encoder is the expensive part (seconds per image on a CPU), the
prompt encoder and mask decoder are cheap, so the image is encoded once per
call and all its boxes are decoded in one batch; embeddings are also kept in a
small LRU keyed by the image's sha256, so a second verification round on the
same image does not encode it again. Checkpoints load through SAM_BUILDERS:
SAM's vit_b / vit_l / vit_h and MedSAM's medsam_vit_b (a vit_b with MedSAM's
own preprocessing: a 1024x1024 resize of the 0-1 scaled image, no padding).
On CUDA the model runs under bf16 autocast.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from evlf.core.errors import ConfigError
from evlf.core.refine import Refinement, Refiner
from evlf.core.types import Box, LoadedImage
from evlf.plugins.refiners.common import check_boxes, refinement

Style = Literal["sam", "medsam"]


@dataclass(frozen=True)
class SamSpec:
    """How to build a model type (random weights) and which preprocessing its checkpoints expect."""

    build: Callable[[], Any]
    style: Style = "sam"


def _registry(name: str) -> Callable[[], Any]:
    def build() -> Any:
        from evlf.plugins.refiners.tv_shim import import_segment_anything

        return import_segment_anything().sam_model_registry[name](checkpoint=None)

    return build


#: Model types a checkpoint may be; third parties may add their own.
SAM_BUILDERS: dict[str, SamSpec] = {
    "vit_b": SamSpec(_registry("vit_b")),
    "vit_l": SamSpec(_registry("vit_l")),
    "vit_h": SamSpec(_registry("vit_h")),
    "medsam_vit_b": SamSpec(_registry("vit_b"), style="medsam"),
}


def _load_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable SAM checkpoint ({type(exc).__name__}: {exc})") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: a SAM checkpoint must hold a state dict")
    return state


@dataclass
class _Embedding:
    features: Any  # 1 x C x h x w on the model's device
    input_size: tuple[int, int]  # (h, w) of the resized image inside the encoder's square


class SamRefiner(Refiner):
    """Segment Anything (or MedSAM) box-prompted refinement."""

    name: ClassVar[str] = "sam"

    def __init__(self, checkpoint: str, model_type: str = "vit_b", device: str | None = None, cache_size: int = 8) -> None:
        spec = SAM_BUILDERS.get(model_type)
        if spec is None:
            raise ConfigError(f"unknown SAM model type {model_type!r} (known: {', '.join(sorted(SAM_BUILDERS))})")
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ConfigError(f"SAM checkpoint {path} not found (set the refiner's checkpoint path)")
        model = spec.build()
        try:
            model.load_state_dict(_load_state(path))
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: does not fit SAM model type {model_type!r} ({first})") from None
        self._setup(model, spec.style, device, cache_size)
        self.checkpoint, self.model_type = str(path), model_type

    @classmethod
    def from_model(cls, model: Any, style: Style = "sam", device: str | None = None, cache_size: int = 8) -> SamRefiner:
        """Wrap an already built `segment_anything.modeling.Sam` (tests, notebooks)."""
        self = cls.__new__(cls)
        self._setup(model, style, device, cache_size)
        self.checkpoint, self.model_type = None, None
        return self

    def _setup(self, model: Any, style: Style, device: str | None, cache_size: int) -> None:
        import torch

        if cache_size < 1:
            raise ConfigError("the SAM embedding cache needs room for at least one image")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        self.style: Style = style
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _Embedding] = OrderedDict()  # LRU, most recent last
        self.encodings = 0  # how many images were run through the encoder (for tests and benchmarks)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encoder_input(self, rgb: np.ndarray) -> tuple[Any, tuple[int, int]]:
        import torch
        import torch.nn.functional as F

        size = self.model.image_encoder.img_size
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).to(self.device).permute(2, 0, 1)[None].float()
        h, w = rgb.shape[:2]
        if self.style == "medsam":
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 255)
            lo, hi = x.amin(), x.amax()
            return (x - lo) / (hi - lo).clamp(min=1e-8), (size, size)
        scale = size / max(h, w)
        new = (int(h * scale + 0.5), int(w * scale + 0.5))
        x = F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=True)
        return self.model.preprocess(x), new  # normalise and pad to the square

    def embed(self, image: LoadedImage) -> _Embedding:
        """The image's embedding, from the cache when this image (by sha256) was seen recently."""
        import torch

        key = f"{self.style}:{image.sha256}:{image.frame_index}:{image.width}x{image.height}"  # frames share a file hash
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        x, input_size = self._encoder_input(np.asarray(image.rgb))
        with torch.inference_mode(), self._autocast():
            features = self.model.image_encoder(x)
        self.encodings += 1
        emb = _Embedding(features=features, input_size=input_size)
        self._cache[key] = emb
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return emb

    def refine(self, image: LoadedImage, boxes: list[Box]) -> list[Refinement]:
        import torch
        import torch.nn.functional as F

        check_boxes(image, boxes)
        if not boxes:
            return []
        if np.asarray(image.rgb).shape[:2] != (image.height, image.width):
            raise ConfigError(f"{image.path}: the RGB rendering is not on the original pixel grid")
        emb = self.embed(image)
        h, w = image.height, image.width
        ih, iw = emb.input_size
        coords = torch.tensor([b.as_list() for b in boxes], dtype=torch.float32, device=self.device)
        coords = coords * torch.tensor([iw / w, ih / h, iw / w, ih / h], device=self.device)
        with torch.inference_mode(), self._autocast():
            sparse, dense = self.model.prompt_encoder(points=None, boxes=coords, masks=None)
            low_res, iou_pred = self.model.mask_decoder(
                image_embeddings=emb.features,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
        low_res = low_res.float()
        # the low-res logits cover the encoder's square; keep the part showing the image, then go to original pixels
        side = self.model.image_encoder.img_size
        lh, lw = low_res.shape[-2:]
        crop = low_res[..., : max(1, round(ih * lh / side)), : max(1, round(iw * lw / side))]
        logits = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        masks = (logits > 0.0).cpu().numpy()  # SAM's mask_threshold; MedSAM's sigmoid > 0.5 is the same cut
        scores = iou_pred.float()[:, 0].clamp(0, 1).cpu().numpy()
        return [refinement(b, m, float(s)) for b, m, s in zip(boxes, masks, scores)]

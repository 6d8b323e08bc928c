"""Any transformers vision model on local disk as an embedder, chosen by configuration (never downloaded).

The embedding is the model's pooled output when it has one (CLIP/SigLIP image
features, ViT pooler), else the mean of the last hidden state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evlf.core.embed import Embedder
from evlf.core.errors import ConfigError
from evlf.core.types import LoadedImage


def _weights_digest(path: Path) -> str:
    """Short digest of the config and weight file sizes: a cheap identity that changes when the weights change."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin"}):
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


class HFVisionEmbedder(Embedder):
    """A local transformers vision model (AutoModel + AutoImageProcessor, local_files_only); loads at construction to learn its output size."""

    name: ClassVar[str] = "hf-vision"

    def __init__(self, path: str | Path, batch_size: int = 16, device: str = "cpu") -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"{self.path}: not a transformers model folder (no config.json)")
        self.batch_size = batch_size
        self.device = device
        self.version = f"{self.path.name}-{_weights_digest(self.path)}"
        self._model: Any = None
        self._processor: Any = None
        self.dim = self._probe_dim()

    def _probe_dim(self) -> int:
        """Run the model once on a blank image: configs name their output size in too many ways to trust."""
        import torch

        model, processor = self._load()
        inputs = processor(images=[np.zeros((32, 32, 3), dtype=np.uint8)], return_tensors="pt")
        with torch.inference_mode():
            return int(self._features(model, inputs["pixel_values"].to(self.device)).shape[-1])

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from transformers import AutoImageProcessor, AutoModel

            try:
                self._processor = AutoImageProcessor.from_pretrained(self.path, local_files_only=True)
                self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval().to(self.device)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.path}: cannot load a vision model here ({str(exc).splitlines()[0][:160]})") from None
        return self._model, self._processor

    def _features(self, model: Any, pixel_values: Any) -> Any:
        if hasattr(model, "get_image_features"):
            out = model.get_image_features(pixel_values=pixel_values)
            return out if not hasattr(out, "pooler_output") else out.pooler_output
        out = model(pixel_values=pixel_values)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        hidden = out.last_hidden_state
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))

    def embed(self, images: list[LoadedImage]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        model, processor = self._load()
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = [im.rgb[..., :3] for im in images[start : start + self.batch_size]]
            inputs = processor(images=chunk, return_tensors="pt")
            with torch.inference_mode():
                feats = self._features(model, inputs["pixel_values"].to(self.device))
            out.append(feats.float().cpu().numpy())
        vectors = np.concatenate(out).astype(np.float32)
        if vectors.shape[1] != self.dim:
            raise ConfigError(f"{self.path}: model gave {vectors.shape[1]}-d features, expected {self.dim}")
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

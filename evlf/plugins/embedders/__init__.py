"""Built-in image embedders: EfficientNet-Lite0 (offline default) and any local transformers vision model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.hookspecs import hookimpl
from evlf.plugins.embedders.efficientnet import EfficientNetLite0Embedder
from evlf.plugins.embedders.hf_vision import HFVisionEmbedder

DEFAULT_EMBEDDER = EfficientNetLite0Embedder.name

__all__ = ["DEFAULT_EMBEDDER", "EfficientNetLite0Embedder", "HFVisionEmbedder", "register_embedders"]


@hookimpl
def register_embedders(register: Callable[[Any], None]) -> None:
    register(EfficientNetLite0Embedder)
    register(HFVisionEmbedder)

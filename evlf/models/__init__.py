"""Model weights shipped inside the package (the `demo` model) and the custom architecture its tower uses."""

from __future__ import annotations

from typing import Any

#: vision_config model_type -> module that registers it with transformers' Auto classes.
ARCHITECTURES = {"evlf_lite0_vision": "evlf.models.lite0_vision"}


def register_architectures(config: dict[str, Any]) -> None:
    """Import the custom architecture a model directory's config.json names, so AutoModel* can build it."""
    import importlib

    vision = config.get("vision_config") or {}
    module = ARCHITECTURES.get(str(vision.get("model_type", "")))
    if module:
        importlib.import_module(module)

"""How a store gets its vectors: the embedder a manifest names, the case's image, and the facts the image adds to a case."""

from __future__ import annotations

from typing import Any

from evlf.core.embed import Embedder
from evlf.core.errors import ConfigError
from evlf.core.types import LoadedImage
from evlf.retrieval.case import Case


def resolve_embedder(config: dict[str, Any]) -> Embedder:
    """Build the embedder a manifest names, through the plugin registry."""
    from evlf.core.plugins import registries

    cfg = dict(config)
    name = cfg.pop("name", None)
    if not name:
        raise ConfigError("the case store manifest does not say how to build its embedder; pass one explicitly")
    return registries().embedders.get(name)(**cfg)


def embedder_config(embedder: Embedder) -> dict[str, Any]:
    cfg: dict[str, Any] = {"name": embedder.name}
    path = getattr(embedder, "path", None)
    if path is not None:
        cfg["path"] = str(path)
    return cfg


def default_embedder() -> Embedder:
    """The offline default: EfficientNet-Lite0 through the plugin registry."""
    from evlf.core.plugins import registries

    return registries().embedders.get("efficientnet-lite0")()


def load_case_image(case: Case) -> LoadedImage:
    from evlf.core.imaging import load_image

    return load_image(case.image_path, frame=case.frame)


def with_image_facts(case: Case, image: LoadedImage) -> Case:
    """Fill what the image itself tells (hash; modality, body part and view from headers) where the case is silent."""
    meta = image.meta
    return case.model_copy(
        update={
            "image_sha256": case.image_sha256 or image.sha256,
            "modality": case.modality or meta.modality,
            "body_part": case.body_part or meta.body_part,
            "view": case.view or meta.view,
        }
    )

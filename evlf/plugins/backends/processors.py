"""Loading a family's processor offline, and the size each image was fed at.

The Qwen-VL and InternVL processors insist on a video processor, which needs
torchvision; where it is missing, an image-only subclass of the same
processor is built from the model directory's settings. Heavy imports
(transformers) happen inside functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError
from evlf.plugins.backends.families import Family


def torchvision_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # a torchvision built for another torch fails at import
        return False
    return True



def image_only_processor_class(processor_cls: type) -> type:
    """Subclass a processor so it needs no video processor (which needs torchvision)."""

    class ImageOnly(processor_cls):  # type: ignore[misc, valid-type]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = processor_cls.__name__
    return ImageOnly


def transformers_class(name: str) -> type:
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None:
        raise ConfigError(f"this transformers ({transformers.__version__}) has no {name}")
    return cls


def load_processor(path: str | Path, family: Family) -> Any:
    """The model directory's processor, image-only where torchvision is missing."""
    from transformers import AutoProcessor, AutoTokenizer

    path = Path(path)
    if not family.has_video_processor or torchvision_available():
        return AutoProcessor.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    processor_cfg: dict[str, Any] = {}
    proc_file = path / "processor_config.json"
    if proc_file.exists():
        processor_cfg = json.loads(proc_file.read_text())
    image_cfg = processor_cfg.pop("image_processor", None)
    if image_cfg is None and (path / "preprocessor_config.json").exists():  # older layout
        image_cfg = json.loads((path / "preprocessor_config.json").read_text())
    if image_cfg is None:
        raise ConfigError(f"{path}: no image processor settings (processor_config.json or preprocessor_config.json)")
    for key in ("image_processor_type", "processor_class", "auto_map"):
        image_cfg.pop(key, None)
    image_processor = transformers_class(family.image_processor)(**image_cfg)
    processor_cfg = {
        k: v
        for k, v in processor_cfg.items()
        if k not in ("processor_class", "auto_map", "video_processor", "tokenizer") and not isinstance(v, dict)
    }
    template = tokenizer.chat_template
    template_file = path / "chat_template.jinja"
    if template_file.exists():
        template = template_file.read_text()
    cls = image_only_processor_class(transformers_class(family.processor))
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=template, **processor_cfg)


def fed_sizes(family: Family, processor: Any, inputs: Any, n_images: int) -> list[tuple[int, int]]:
    """(width, height) of the image grid the model saw, per image, in order."""
    grid = inputs.get("image_grid_thw") if hasattr(inputs, "get") else None
    if grid is not None:
        patch = int(getattr(processor.image_processor, "patch_size", 14))
        return [(int(g[2]) * patch, int(g[1]) * patch) for g in grid.tolist()][:n_images]
    size = getattr(processor.image_processor, "size", None) or {}
    get = size.get if hasattr(size, "get") else (lambda k, d=None: getattr(size, k, d))
    if get("height") and get("width"):
        return [(int(get("width")), int(get("height")))] * n_images
    if get("longest_edge"):
        return [(int(get("longest_edge")), int(get("longest_edge")))] * n_images
    if get("shortest_edge"):
        return [(int(get("shortest_edge")), int(get("shortest_edge")))] * n_images
    return []


def qwen_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 14 * 14 * 4 * 1280,
) -> tuple[int, int]:
    """(height, width) the Qwen-VL image processor resizes an image to: transformers' own `smart_resize`.

    Lets a box in resized pixels map back exactly without loading a processor
    (the openai backend, training's box codec).
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    if min(height, width) <= 0:
        raise ValueError("image has no pixels")
    h, w = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return int(h), int(w)


#: processors whose call returns `mm_token_type_ids` built by ProcessorMixin (others, e.g. Gemma 3's, build their own or drop them)
MM_TYPES_PROCESSORS = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor")


def builds_mm_token_types(processor: Any) -> bool:
    return type(processor).__name__ in MM_TYPES_PROCESSORS and bool(getattr(processor, "return_mm_token_type_ids", False))


def mm_token_types(processor: Any, input_ids: Any) -> Any:
    """The processor's `mm_token_type_ids` (0 text, 1 image, 2 video, 3 audio) for a padded batch, in one pass.

    transformers builds them row by row with numpy.isin on Python lists; on a
    batch of 32 that was a visible part of the backend's own time.
    """
    import torch

    types = torch.zeros_like(input_ids)
    for value, ids in ((1, processor.image_token_ids), (2, processor.video_token_ids), (3, processor.audio_token_ids)):
        known = [i for i in ids if i is not None]
        if known:
            types[torch.isin(input_ids, torch.tensor(known, dtype=input_ids.dtype))] = value
    return types


def decode_rows(tokenizer: Any, rows: list[list[int]]) -> list[str]:
    """`tokenizer.batch_decode(rows, skip_special_tokens=True)` in one call to the fast tokenizer's Rust backend.

    transformers' batch_decode first walks every token id of every row in Python
    (to_py_obj); at batch 32 that was a millisecond of the backend's own time.
    Only a tokenizer whose decoding is exactly its backend's (transformers'
    own `_decode`, no space clean-up) takes this path.
    """
    from transformers import TokenizersBackend

    plain = type(tokenizer)._decode is TokenizersBackend._decode and not getattr(tokenizer, "clean_up_tokenization_spaces", True)
    if not plain:
        return tokenizer.batch_decode(rows, skip_special_tokens=True)
    return tokenizer.backend_tokenizer.decode_batch(rows, skip_special_tokens=True)

"""The demo VLM: a stock LlavaForConditionalGeneration whose vision tower is the Lite0 detector (evlf.models.lite0_vision).

The tower emits one answer token per slot (type, regions, box digits); a small
Llama-style decoder, trained from scratch with a tokenizer fitted on the
prompts and answers, learns to write the EVLF answer from them. Images are
normalised as EfficientNet-Lite expects ((x - 127) / 128).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evlf.training.tiny_vlm import CHAT_TEMPLATE, llava_model, train_tokenizer

LITE0_MEAN = [127 / 255] * 3
LITE0_STD = [128 / 255] * 3


class Lite0VlmConfig(BaseModel):
    """Sizes of the demo architecture."""

    image_size: int = 160
    patch_size: int = 32  # (160 // 32) ** 2 = 25 answer tokens, 19 of them used
    head_width: int = 64
    second_box_threshold: float = 0.3
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    text_intermediate: int = 256
    vocab_size: int = 4096
    max_positions: int = 1024


def image_processor(cfg: Lite0VlmConfig) -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"height": cfg.image_size, "width": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
        do_center_crop=False,
        do_resize=True,
        image_mean=LITE0_MEAN,
        image_std=LITE0_STD,
    )


def build_lite0_vlm(out_dir: Path, corpus: Iterable[str], head_state: dict[str, Any], cfg: Lite0VlmConfig, seed: int = 0) -> Path:
    """A LLaVA model with the trained head in its tower and a fresh decoder, saved with its processor."""
    import torch
    from transformers import LlavaProcessor

    from evlf.models.lite0_vision import Lite0VisionConfig

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(corpus, cfg.vocab_size, merge_across_spaces=True, isolate_json=True)
    vision = Lite0VisionConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, head_width=cfg.head_width,
                               second_box_threshold=cfg.second_box_threshold)
    model = llava_model(vision, tokenizer, cfg, "full")
    model.model.vision_tower.head.load_state_dict(head_state)
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    processor = LlavaProcessor(
        image_processor=image_processor(cfg),
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=0,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir

"""Tiny random models of each family, built offline: a byte-level tokenizer, a config, a processor.

No tokenizer files or weights ship offline; a byte-level vocabulary encodes
any text, and a family's real architecture at about 200k random parameters
runs the real loading and generation code in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError
from evlf.plugins.backends.families import Family, get_family
from evlf.plugins.backends.processors import image_only_processor_class, transformers_class


def byte_level_tokenizer(family: Family) -> Any:
    """A working fast tokenizer with 256 byte symbols plus the family's markers, built in memory.

    No tokenizer files ship offline; a byte-level vocabulary encodes any text,
    which is all an untrained tiny model needs.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in family.specials])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=family.eos,
        pad_token=family.pad,
        extra_special_tokens=dict(family.tokenizer_attrs),
    )
    if family.name == "gemma3":
        tokenizer.bos_token = "<bos>"
    tokenizer.padding_side = "left"
    tokenizer.chat_template = family.chat_template
    return tokenizer



def _ids(tokenizer: Any, *tokens: str) -> list[int]:
    return [int(tokenizer.convert_tokens_to_ids(t)) for t in tokens]


def _text(vocab: int, **extra: Any) -> dict[str, Any]:
    cfg = {
        "vocab_size": vocab,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
        "bos_token_id": None,
    }
    cfg.update(extra)
    return cfg


def tiny_config(family: Family, tokenizer: Any) -> Any:
    """A random-weights config of the family, about 100k-300k parameters."""
    import transformers as tf

    vocab = len(tokenizer)
    eos, pad = _ids(tokenizer, family.eos, family.pad)
    if family.name in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        image, video, vstart, vend = _ids(tokenizer, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
        ids = {"image_token_id": image, "video_token_id": video, "vision_start_token_id": vstart, "vision_end_token_id": vend}
        if family.name == "qwen2_vl":
            text = _text(vocab, eos_token_id=eos, pad_token_id=pad, rope_parameters={"rope_type": "default", "mrope_section": [4, 2, 2], "rope_theta": 10000.0})
            vision = {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2}
            return tf.Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
        if family.name == "qwen2_5_vl":
            text = _text(vocab, eos_token_id=eos, pad_token_id=pad, rope_parameters={"rope_type": "default", "mrope_section": [4, 2, 2], "rope_theta": 10000.0})
            vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32, "patch_size": 14, "spatial_merge_size": 2, "window_size": 56, "fullatt_block_indexes": [0]}
            return tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
        text = _text(vocab, eos_token_id=eos, pad_token_id=pad, rope_parameters={"rope_type": "default", "mrope_section": [4, 2, 2], "mrope_interleaved": True, "rope_theta": 10000.0})
        vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32, "patch_size": 16, "spatial_merge_size": 2, "num_position_embeddings": 64, "deepstack_visual_indexes": []}
        return tf.Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    if family.name == "internvl":
        (context,) = _ids(tokenizer, "<IMG_CONTEXT>")
        text = dict(_text(vocab, eos_token_id=eos, pad_token_id=pad), model_type="qwen2")
        vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": [448, 448], "patch_size": [14, 14]}
        return tf.InternVLConfig(text_config=text, vision_config=vision, image_token_id=context, downsample_ratio=0.5)
    if family.name == "llava":
        (image,) = _ids(tokenizer, "<image>")
        text = dict(_text(vocab, eos_token_id=eos, pad_token_id=pad), model_type="llama")
        vision = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14, "projection_dim": 32}
        return tf.LlavaConfig(text_config=text, vision_config=vision, image_token_id=image, vision_feature_layer=-1, vision_feature_select_strategy="full")
    if family.name == "idefics3":
        (image,) = _ids(tokenizer, "<image>")
        text = dict(_text(vocab, eos_token_id=eos, pad_token_id=pad), model_type="llama")
        vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}
        return tf.Idefics3Config(text_config=text, vision_config=vision, image_token_id=image, scale_factor=2, pad_token_id=pad)
    if family.name == "gemma3":
        (image, boi, eoi) = _ids(tokenizer, "<image_soft_token>", "<start_of_image>", "<end_of_image>")
        text = dict(_text(vocab, eos_token_id=eos, pad_token_id=pad), sliding_window=64, layer_types=["full_attention", "full_attention"])
        vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}
        return tf.Gemma3Config(text_config=text, vision_config=vision, image_token_index=image, boi_token_index=boi, eoi_token_index=eoi, mm_tokens_per_image=1)
    raise ConfigError(f"no tiny config for family {family.name!r}")


def tiny_processor(family: Family, tokenizer: Any) -> Any:
    """The family's processor around the byte-level tokenizer, sized for tiny images."""
    image_cls = transformers_class(family.image_processor)
    if family.name in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        patch = 16 if family.name == "qwen3_vl" else 14
        side = patch * 2
        image_processor = image_cls(size={"shortest_edge": side * side, "longest_edge": 4 * side * side}, patch_size=patch, merge_size=2)
    elif family.name == "internvl":
        image_processor = image_cls(size={"height": 448, "width": 448}, max_patches=1)  # 256 image tokens, as the processor assumes
    elif family.name == "llava":
        image_processor = image_cls(size={"height": 28, "width": 28}, do_center_crop=False)
    elif family.name == "idefics3":
        image_processor = image_cls(size={"longest_edge": 28}, max_image_size={"longest_edge": 28}, do_image_splitting=False)
    else:
        image_processor = image_cls(size={"height": 28, "width": 28}, do_pan_and_scan=False)
    kwargs: dict[str, Any] = {}
    if family.name == "llava":
        kwargs.update(patch_size=14, vision_feature_select_strategy="full", num_additional_image_tokens=1)
    elif family.name == "idefics3":
        kwargs["image_seq_len"] = 1
    elif family.name == "gemma3":
        kwargs["image_seq_length"] = 1
    processor_cls = transformers_class(family.processor)
    if family.has_video_processor:
        processor_cls = image_only_processor_class(processor_cls)
    return processor_cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=family.chat_template, **kwargs)


def build_tiny_model(family_name: str, path: str | Path, seed: int = 0) -> Path:
    """Build, initialise randomly (seeded) and save a tiny model of the family into `path`."""
    import torch
    from transformers import AutoModelForImageTextToText

    family = get_family(family_name)
    path = Path(path)
    tokenizer = byte_level_tokenizer(family)
    processor = tiny_processor(family, tokenizer)
    config = tiny_config(family, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = config.get_text_config().eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the CLI's output clean
    model.save_pretrained(path)
    processor.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "evlf_tiny.json").write_text(json.dumps({"family": family.name, "seed": seed, "trained": False}))
    return path

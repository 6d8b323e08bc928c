"""What differs between VLM families: box convention, processor quirks, tiny configs.

Everything a backend must know about a family lives here, keyed by the
config's `model_type`, so the backends themselves stay family-agnostic:

- the frame the family draws boxes in (see `evlf.core.geometry.BoxConvention`);
- how to build its processor when `AutoProcessor` cannot (the Qwen-VL and
  InternVL processors insist on a video processor, which needs torchvision;
  an image-only subclass of the same processor works without it);
- the size each image was fed to the model, for exact box decoding;
- a tiny random config of the family with an offline byte-level tokenizer, so
  the tiny backend and the tests run the real loading and generation code
  without any downloaded weights.

Heavy imports (torch, transformers, tokenizers) happen inside functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError
from evlf.core.geometry import BoxConvention


@dataclass(frozen=True)
class Family:
    """One VLM family as evlf drives it."""

    name: str  # evlf's name (also the tiny backend's `family=`)
    model_types: tuple[str, ...]  # config.model_type values that belong to it
    box_convention: BoxConvention
    processor: str  # transformers processor class name
    image_processor: str  # PIL-backed image processor class (no torchvision)
    has_video_processor: bool = False
    specials: tuple[str, ...] = ()  # special tokens the byte-level tiny tokenizer needs
    tokenizer_attrs: dict[str, str] = field(default_factory=dict)  # e.g. image_token for tokenizers the processor asks
    eos: str = "<|im_end|>"
    pad: str = "<|endoftext|>"
    chat_template: str = ""


_QWEN_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Minimal renditions of each family's own chat template (same markers, same layout).
_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_INTERNVL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
_GEMMA3_TEMPLATE = (
    "<bos>{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "qwen2_vl",
            ("qwen2_vl",),
            BoxConvention.GRID_1000,
            "Qwen2VLProcessor",
            "Qwen2VLImageProcessorPil",
            has_video_processor=True,
            specials=_QWEN_SPECIALS,
            chat_template=_QWEN_TEMPLATE,
        ),
        Family(
            "qwen2_5_vl",
            ("qwen2_5_vl",),
            BoxConvention.RESIZED_PIXELS,
            "Qwen2_5_VLProcessor",
            "Qwen2VLImageProcessorPil",
            has_video_processor=True,
            specials=_QWEN_SPECIALS,
            chat_template=_QWEN_TEMPLATE,
        ),
        Family(
            "qwen3_vl",
            ("qwen3_vl",),
            BoxConvention.GRID_1000,
            "Qwen3VLProcessor",
            "Qwen2VLImageProcessorPil",
            has_video_processor=True,
            specials=_QWEN_SPECIALS,
            chat_template=_QWEN_TEMPLATE,
        ),
        Family(
            "internvl",
            ("internvl",),
            BoxConvention.GRID_1000,
            "InternVLProcessor",
            "GotOcr2ImageProcessorPil",
            has_video_processor=True,
            specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
            tokenizer_attrs={
                "start_image_token": "<img>",
                "end_image_token": "</img>",
                "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>",
            },
            chat_template=_INTERNVL_TEMPLATE,
        ),
        Family(
            "llava",
            ("llava",),
            BoxConvention.UNIT,
            "LlavaProcessor",
            "LlavaImageProcessorPil",
            specials=("<s>", "</s>", "<pad>", "<image>"),
            tokenizer_attrs={"image_token": "<image>"},
            eos="</s>",
            pad="<pad>",
            chat_template=_LLAVA_TEMPLATE,
        ),
        Family(
            "idefics3",
            ("idefics3", "smolvlm"),
            BoxConvention.UNIT,
            "Idefics3Processor",
            "Idefics3ImageProcessorPil",
            specials=(
                "<|endoftext|>",
                "<|im_start|>",
                "<end_of_utterance>",
                "<image>",
                "<fake_token_around_image>",
                "<global-img>",
                *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
            ),
            tokenizer_attrs={
                "image_token": "<image>",
                "fake_image_token": "<fake_token_around_image>",
                "global_image_token": "<global-img>",
                "end_of_utterance_token": "<end_of_utterance>",
            },
            eos="<end_of_utterance>",
            pad="<|endoftext|>",
            chat_template=_IDEFICS3_TEMPLATE,
        ),
        Family(
            "gemma3",
            ("gemma3",),
            BoxConvention.UNIT,
            "Gemma3Processor",
            "Gemma3ImageProcessorPil",
            specials=(
                "<pad>",
                "<eos>",
                "<bos>",
                "<start_of_turn>",
                "<end_of_turn>",
                "<start_of_image>",
                "<end_of_image>",
                "<image_soft_token>",
            ),
            tokenizer_attrs={
                "boi_token": "<start_of_image>",
                "eoi_token": "<end_of_image>",
                "image_token": "<image_soft_token>",
            },
            eos="<end_of_turn>",
            pad="<pad>",
            chat_template=_GEMMA3_TEMPLATE,
        ),
    )
}


def family_of(model_type: str) -> Family:
    """The family of a config's `model_type`; ConfigError for one evlf does not drive."""
    if model_type == "internvl_chat":
        raise ConfigError(
            "this is an original InternVL checkpoint (remote code, model_type internvl_chat); "
            "use its transformers-format '-hf' release or convert it with transformers' convert_internvl_weights_to_hf.py"
        )
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(sorted(t for f in FAMILIES.values() for t in f.model_types))
    raise ConfigError(f"model type {model_type!r} is not a supported VLM family (supported: {known})")


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})") from None


def torchvision_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # a torchvision built for another torch fails at import
        return False
    return True


# --------------------------------------------------------------------------- tokenizer


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


# --------------------------------------------------------------------------- processors


def image_only_processor_class(processor_cls: type) -> type:
    """Subclass a processor so it needs no video processor (which needs torchvision)."""

    class ImageOnly(processor_cls):  # type: ignore[misc, valid-type]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = processor_cls.__name__
    return ImageOnly


def _transformers_class(name: str) -> type:
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
    image_processor = _transformers_class(family.image_processor)(**image_cfg)
    processor_cfg = {
        k: v
        for k, v in processor_cfg.items()
        if k not in ("processor_class", "auto_map", "video_processor", "tokenizer") and not isinstance(v, dict)
    }
    template = tokenizer.chat_template
    template_file = path / "chat_template.jinja"
    if template_file.exists():
        template = template_file.read_text()
    cls = image_only_processor_class(_transformers_class(family.processor))
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


# --------------------------------------------------------------------------- tiny models

TINY_IMAGE = 56  # tiny models see images at about this size (a few image tokens)


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
    image_cls = _transformers_class(family.image_processor)
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
    processor_cls = _transformers_class(family.processor)
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

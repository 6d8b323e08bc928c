"""What differs between VLM families, keyed by the config's `model_type`.

Per family: the frame it draws boxes in (see `evlf.core.geometry.BoxConvention`),
its processor and PIL image-processor classes (loaded by `processors.py`), and
the special tokens and chat template its tiny model uses (built by
`tiny_models.py`). The backends themselves stay family-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

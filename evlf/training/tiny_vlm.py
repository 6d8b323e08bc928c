"""A small LLaVA-style VLM built from a config, with a tokenizer trained on the answer corpus.

Why LLaVA-style: a CLIP vision tower has learned position embeddings, so each
patch token knows where it is; in a trial here such a model learned to box a
blob, where a tiny Qwen2-VL learned the format but not the location. No
tokenizer files exist offline, so a byte-level BPE is trained on the texts the
model will read and write (prompts and EVLF answers), which keeps sequences short.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

IMAGE_TOKEN = "<image>"
PAD, BOS, EOS = "<pad>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IMAGE_TOKEN]
MAX_TOKEN_CHARS = 12

#: ChatML-like template; images become one <image> marker the processor expands to patch tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class TinyVlmConfig(BaseModel):
    """Sizes of the demo architecture (about 3-5 M parameters at the defaults)."""

    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    text_hidden: int = 192
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate: int = 512
    vocab_size: int = 1024
    max_positions: int = 512
    #: BPE merges may cross spaces (not lines or digits): a fixed ~1,300-token specialty prompt becomes ~450 tokens.
    merge_across_spaces: bool = False


def train_tokenizer(corpus: Iterable[str], vocab_size: int, merge_across_spaces: bool = False, isolate_json: bool = False):
    """Byte-level BPE fitted on `corpus`, wrapped as a transformers fast tokenizer.

    With `merge_across_spaces` the text is split only at line breaks and digits
    (each digit its own piece, so coordinates stay composable), and merges can
    span words: the long prompts the graph repeats for every case shrink to a
    few hundred tokens, which keeps training on them affordable on a CPU.
    With `isolate_json` each JSON or tag punctuation mark ({ } [ ] " : , < >) is
    a token of its own, so no token spans two grammar lexemes: merged tokens such
    as `","conf` made grammar-constrained decoding refuse the model's own tokens.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if merge_across_spaces:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split("\n", behavior="isolated"),
            *([pre_tokenizers.Split(Regex(r'[{}\[\]":,<>]'), behavior="isolated")] if isolate_json else []),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        # Short tokens keep decisions apart (normal or lesion, then which lesion, then where); unbounded merges
        # fused them into one token per combination and the model always chose the commonest one (normal).
        max_token_length=MAX_TOKEN_CHARS if merge_across_spaces else None,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, extra_special_tokens={"image_token": IMAGE_TOKEN}
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def llava_model(vision: Any, tokenizer: Any, cfg: Any, select_strategy: str) -> Any:
    """A stock LlavaForConditionalGeneration: `vision` plus a small Llama decoder sized by `cfg` (its text_* fields)."""
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_hidden,
        intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_heads,
        max_position_embeddings=cfg.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
        vision_feature_select_strategy=select_strategy,
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    return model


def build_tiny_vlm(out_dir: Path, corpus: Iterable[str], config: TinyVlmConfig | None = None, seed: int = 0) -> Path:
    """Build a randomly initialised LLaVA-style model + processor and save them as a model directory."""
    import torch
    from transformers import CLIPVisionConfig

    cfg = config or TinyVlmConfig()
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(corpus, cfg.vocab_size, cfg.merge_across_spaces)
    vision = CLIPVisionConfig(
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_hidden * 4,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        projection_dim=cfg.vision_hidden,
    )
    model = llava_model(vision, tokenizer, cfg, "default")
    return save_llava(out_dir, model, tokenizer, pil_image_processor(cfg.image_size), cfg.patch_size, "default", CHAT_TEMPLATE)


def pil_image_processor(size: int, mean: list[float] | None = None, std: list[float] | None = None) -> Any:
    """A CLIP-style PIL image processor resizing to `size` x `size`, no crop (CLIP's mean and std unless given)."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    norm = {k: v for k, v in (("image_mean", mean), ("image_std", std)) if v is not None}
    return CLIPImageProcessorPil(size={"height": size, "width": size}, crop_size={"height": size, "width": size},
                                 do_center_crop=False, do_resize=True, **norm)


def save_llava(out_dir: Path, model: Any, tokenizer: Any, image_processor: Any, patch_size: int, select_strategy: str,
               chat_template: str) -> Path:
    """Save a LLaVA model with its LlavaProcessor as a model directory.

    "default" drops the tower's CLS token ("full" keeps every token), so the processor counts one extra image token.
    """
    from transformers import LlavaProcessor

    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy=select_strategy,
        chat_template=chat_template,
        num_additional_image_tokens=1 if select_strategy == "default" else 0,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir

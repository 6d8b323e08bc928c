"""The demo recipe's bookkeeping: the card comes from the measured result."""

import json

from evlf.training.model_card import missed, model_card, status


def _metrics(miou, acc50, accuracy, validity=1.0):
    return {"cases": 200, "miou": miou, "acc50": acc50, "accuracy": accuracy, "format_validity": validity}


def _result(pipeline_miou: float) -> dict:
    run = {"n_cases": 200, "accuracy": 0.85, "miou": pipeline_miou, "acc50": 0.7, "n_no_answer": 0, "format_validity": 1.0,
           "command": "evlf eval lesions-test --backend demo --graph direct --out OUT"}
    return {
        "seed": 0, "shipped": "sft", "n_train": 2000, "n_test": 200,
        "head": {"metrics": {"test": _metrics(0.61, 0.7, 0.83), "train": _metrics(0.7, 0.8, 0.95)},
                 "settings": {"epochs": 6, "flips": 2}},
        "held_out": {"sft": _metrics(0.612, 0.7, 0.83), "sft+grpo": _metrics(0.598, 0.69, 0.83)},
        "sft": {"params": 3_000_000}, "grpo": {},
        "architecture": {"image_size": 160, "patch_size": 32, "text_layers": 3, "text_hidden": 128},
        "sft_settings": {"max_steps": 250, "batch_size": 8, "learning_rate": 0.002},
        "grpo_settings": {"max_steps": 4, "num_generations": 4, "learning_rate": 2e-5, "reward_weights": {"format": 1.0}},
        "timings": {"total_s": 1800},
        "pipeline": {"lesions-test": {"direct": run}},
    }


def test_card_reports_the_measured_figures_and_the_gap():
    card = model_card(_result(0.55))
    assert "| SFT | 0.612 | 0.700 | 0.830 | 1.000 |" in card and "| SFT + GRPO | 0.598 |" in card
    assert "| lesions-test | direct | 200 | 0.550 |" in card
    assert "does not meet every goal" in card and "mIoU 0.550 < 0.6" in card
    assert "Synthetic lesions only" in card and "Not for clinical use" in card
    assert status(_result(0.65)).startswith("It meets the goals")
    assert missed(_metrics(0.6, 0.6, 0.8, 0.99)) == []


def test_decision_tokens_are_digits_and_label_words(lesions):
    from evlf.training.examples import answer_corpus, build_examples
    from evlf.training.sft import decision_ids
    from evlf.training.tiny_vlm import train_tokenizer

    tok = train_tokenizer(answer_corpus(build_examples(lesions, prompts="pipeline")), 1024, merge_across_spaces=True,
                          isolate_json=True)
    pieces = {tok.decode([i]) for i in decision_ids(tok, ["nodule", "mass", "cyst", "normal"])}
    assert set("0123456789") <= pieces and '"' not in pieces
    assert all(p.isdigit() or p.strip() in {"nodule", "mass", "cyst", "normal"} or p.strip() in "nodulemasscystnormal" for p in pieces)

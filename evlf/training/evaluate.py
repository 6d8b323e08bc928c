"""Held-out scoring of a trained model directory during training: greedy replies, no constrained decoding.

The same prompts as training, parsed as evlf parses them (`<think>..</think>
<answer>{json}</answer>`), boxes decoded from the model's convention to
original pixels, scored with the evaluation harness' metrics (Hungarian IoU
matching, mIoU, Acc@0.5). `evlf eval --backend demo` is the pipeline-level
check; this one needs no graph and runs inside the training script.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from evlf.training.examples import build_examples, prompt_messages
from evlf.training.rewards import parse_answer


def evaluate_model(model_dir: str | Path, dataset: str | Path, batch_size: int = 16, max_new_tokens: int = 160,
                   predictions: Path | None = None, prompts: str = "evlf") -> dict[str, Any]:
    """Label accuracy, mIoU, Acc@0.5 and format validity of `model_dir` on a dataset JSONL (`prompts` as in training).

    Long because loading, batched generation and the four scores run in one pass over the cases.
    """
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from evlf.plugins.backends.processors import load_processor
    from evlf.eval.metrics import case_box_ious, grounding_metrics
    from evlf.training.stage import _family, codec_factory

    model_dir = Path(model_dir)
    family = _family(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True).eval()
    processor = load_processor(model_dir, family)
    processor.tokenizer.padding_side = "left"
    codec_for = codec_factory(family.box_convention, processor)
    examples = build_examples(dataset, codec_for, prompts=prompts)
    truths = {c["id"]: c for c in map(json.loads, Path(dataset).read_text().splitlines()) if c}
    correct = valid = 0
    entries: list[float] = []
    rows = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        texts = [
            processor.apply_chat_template(prompt_messages(e.system, e.user, len(e.image_paths)), add_generation_prompt=True, tokenize=False)
            for e in batch
        ]
        images = [[Image.open(p).convert("RGB") for p in e.image_paths] for e in batch]
        inputs = processor(images=images, text=texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        replies = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for ex, reply in zip(batch, replies, strict=True):
            answer = parse_answer(reply)
            truth = truths[ex.id]
            codec = codec_for(ex.image_sizes[0])
            pred_boxes: list[list[float]] = []
            label = None
            if answer is not None:
                valid += 1
                label = answer.diagnosis
                for f in answer.findings:
                    if f.box is not None:
                        try:
                            pred_boxes.append(codec.decode(f.box).as_list())
                        except ValueError:
                            pass
            correct += int((label or "").strip().lower() == (truth.get("label") or "").lower())
            entries += case_box_ious(pred_boxes, truth.get("boxes") or [])
            rows.append({"id": ex.id, "label": label, "boxes": pred_boxes, "reply": reply})
    n = len(examples)
    grounding = grounding_metrics(entries)
    if predictions is not None:
        predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "cases": n,
        "accuracy": correct / n,
        "miou": grounding["miou"],
        "acc50": grounding["acc50"],
        "format_validity": valid / n,
        "predicted_labels": dict(Counter(str(r["label"]) for r in rows).most_common()),
    }

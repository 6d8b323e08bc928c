"""Rebuild the shipped `demo` model from a seed: `python -m evlf.training.demo_model --seed 0` (make demo-model).

Steps: generate the synthetic lesion set (train and test splits), build a
small LLaVA-style VLM with a tokenizer trained on the prompts and answers,
run the SFT stage and then the GRPO stage (the same functions `evlf train sft`
and `evlf train grpo` run, with the config files written next to them), score
both on the held-out test split, and write the better stage's weights and a
model card into evlf/models/demo/. It knows synthetic lesions only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from evlf.training.config import GrpoSettings, SftSettings
from evlf.training.tiny_vlm import TinyVlmConfig

THREADS = 2
DEMO_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"
SHIPPED = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
           "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def recipe(seed: int, sft_steps: int, grpo_steps: int, sft_lr: float = 1e-3) -> tuple[TinyVlmConfig, SftSettings, GrpoSettings]:
    # Trained on the prompts the graph sends (`prompts="pipeline"`); a tokenizer whose merges cross spaces keeps
    # those ~1,300-token specialty prompts near 450 tokens. 96 px in 12 px patches: finer pixels, same 8x8 grid.
    arch = TinyVlmConfig(image_size=96, patch_size=12, vision_hidden=96, vision_layers=3, vision_heads=4, text_hidden=160,
                         text_layers=3, text_heads=4, text_intermediate=384, vocab_size=4096, max_positions=1024,
                         merge_across_spaces=True)
    sft = SftSettings(seed=seed, learning_rate=sft_lr, batch_size=8, max_steps=sft_steps, warmup_ratio=0.03,
                      weight_decay=0.01, logging_steps=10, save_steps=100, threads=THREADS, prompts="pipeline")
    grpo = GrpoSettings(seed=seed, learning_rate=2e-5, batch_size=8, num_generations=4, max_steps=grpo_steps,
                        max_completion_length=80, temperature=1.0, logging_steps=5, save_steps=50, threads=THREADS,
                        prompts="pipeline")
    return arch, sft, grpo


def score(metrics: dict[str, Any]) -> float:
    """One number to choose the stage to ship: the mean of the four goal metrics."""
    return sum(float(metrics.get(k) or 0.0) for k in ("miou", "acc50", "accuracy", "format_validity")) / 4


def build(seed: int, work: Path, out: Path, n_train: int, sft_steps: int, grpo_steps: int, n_test: int = 200,
          sft_lr: float = 1e-3) -> dict[str, Any]:
    from evlf.eval.lesions import ensure_lesion_set
    from evlf.training.evaluate import evaluate_model
    from evlf.training.examples import answer_corpus, build_examples
    from evlf.training.grpo import run_grpo
    from evlf.training.sft import run_sft
    from evlf.training.tiny_vlm import build_tiny_vlm

    t0 = time.time()
    work.mkdir(parents=True, exist_ok=True)
    train = ensure_lesion_set("train", seed=seed, n_train=n_train, n_test=n_test)
    test = ensure_lesion_set("test", seed=seed, n_train=n_train, n_test=n_test)
    arch, sft_cfg, grpo_cfg = recipe(seed, sft_steps, grpo_steps, sft_lr)
    (work / "sft.json").write_text(sft_cfg.model_dump_json(indent=1))
    (work / "grpo.json").write_text(grpo_cfg.model_dump_json(indent=1))
    base = build_tiny_vlm(work / "base", answer_corpus(build_examples(train, prompts="pipeline")), arch, seed=seed)
    timings: dict[str, float] = {"data_and_base_s": time.time() - t0}
    t = time.time()
    sft = run_sft(train, base, work / "sft", sft_cfg)
    timings["sft_s"] = time.time() - t
    t = time.time()
    sft_metrics = evaluate_model(work / "sft", test, max_new_tokens=96, predictions=work / "sft_predictions.jsonl",
                                 prompts="pipeline")
    timings["eval_sft_s"] = time.time() - t
    print("SFT held-out:", json.dumps(sft_metrics), flush=True)
    t = time.time()
    grpo = run_grpo(train, work / "sft", work / "grpo", grpo_cfg)
    timings["grpo_s"] = time.time() - t
    t = time.time()
    grpo_metrics = evaluate_model(work / "grpo", test, max_new_tokens=96, predictions=work / "grpo_predictions.jsonl",
                                  prompts="pipeline")
    timings["eval_grpo_s"] = time.time() - t
    print("SFT+GRPO held-out:", json.dumps(grpo_metrics), flush=True)
    shipped = "sft+grpo" if score(grpo_metrics) >= score(sft_metrics) else "sft"
    src = work / ("grpo" if shipped == "sft+grpo" else "sft")
    out.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    for stage in ("sft", "grpo"):
        if (work / stage / "curves.png").exists():
            shutil.copy2(work / stage / "curves.png", out / f"curves_{stage}.png")
    timings["total_s"] = time.time() - t0
    result = {
        "seed": seed,
        "shipped": shipped,
        "n_train": n_train,
        "train": str(train),
        "test": str(test),
        "held_out": {"sft": sft_metrics, "sft+grpo": grpo_metrics},
        "sft": {k: v for k, v in sft.items() if k != "settings"},
        "grpo": {k: v for k, v in grpo.items() if k != "settings"},
        "architecture": arch.model_dump(),
        "sft_settings": sft_cfg.model_dump(),
        "grpo_settings": grpo_cfg.model_dump(),
        "timings": timings,
    }
    (out / "training_result.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "MODEL_CARD.md").write_text(model_card(result))
    return result


def _row(name: str, m: dict[str, Any]) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.3f}"
    return f"| {name} | {f(m['miou'])} | {f(m['acc50'])} | {f(m['accuracy'])} | {f(m['format_validity'])} |"


GOALS = {"miou": 0.6, "acc50": 0.6, "accuracy": 0.8, "format_validity": 0.99}


def status(r: dict[str, Any]) -> str:
    """Plain words on whether the shipped model meets the goals, and how it fails when it does not."""
    m = r["held_out"]["sft+grpo" if r["shipped"] == "sft+grpo" else "sft"]
    missed = [f"{k} {float(m[k] or 0):.2f} < {v}" for k, v in GOALS.items() if float(m[k] or 0) < v]
    if not missed:
        return "It meets the held-out goals below."
    text = f"**It does not meet the goals** ({'; '.join(missed)})."
    labels = m.get("predicted_labels") or {}
    if len(labels) == 1:
        text += f" It names the same label ({next(iter(labels))}) for every test image, so its lesion-type accuracy is the share of that label;"
        text += " it reads the image's modality but has not learned to tell lesions apart."
    if float(m["miou"] or 0) < 0.3:
        text += " Its boxes land near lesions only roughly: treat them as a smoke test of the grounding path, not as detections."
    return text


def pipeline_section(r: dict[str, Any]) -> str:
    """The same goals measured through the pipeline (`evlf eval ... --graph direct`), when that run was recorded."""
    p = r.get("pipeline_eval")
    if not p:
        return ""
    return f"""## Through the pipeline (`{p['command']}`)

| cases | mIoU | Acc@0.5 | lesion-type accuracy | no parseable answer |
|---|---|---|---|---|
| {p['n_cases']} | {p['miou']:.3f} | {p['acc50']:.3f} | {p['accuracy']:.3f} | {p['n_no_answer']} |

{p['note']}

"""


def trials_section(r: dict[str, Any]) -> str:
    """Other recorded runs of the recipe (not shipped), so the card shows what was tried."""
    trials = r.get("other_trials") or []
    if not trials:
        return ""
    lines = ["## Other runs (not shipped)", "", "| run | stage | mIoU | Acc@0.5 | lesion-type accuracy | format validity |", "|---|---|---|---|---|---|"]
    for t in trials:
        for stage, m in t["held_out"].items():
            lines.append(f"| {t['name']} | {stage} | {m['miou']:.3f} | {m['acc50']:.3f} | {m['accuracy']:.3f} | {m['format_validity']:.3f} |")
    return "\n".join(lines) + "\n\n" + "\n".join(t.get("note", "") for t in trials) + "\n"


def model_card(r: dict[str, Any]) -> str:
    held = r["held_out"]
    a, s, g = r["architecture"], r["sft_settings"], r["grpo_settings"]
    minutes = r["timings"]["total_s"] / 60
    return f"""# evlf demo model

**Synthetic lesions only. Not for clinical use.** This model has only ever seen
computer-drawn nodules, masses and cysts pasted onto crops of public sample
images (the evlf synthetic lesion set). It knows nothing about real disease;
its answers on real studies are meaningless. It exists so that a fresh,
offline machine runs the whole evlf pipeline with a trained model instead of
the untrained `tiny` model.

{status(r)}

## Model
- A small LLaVA-style VLM built from a config (`evlf.training.tiny_vlm`):
  CLIP-style vision tower with learned position embeddings
  ({a['vision_layers']} layers, width {a['vision_hidden']}, {a['image_size']}x{a['image_size']} input, patch {a['patch_size']}),
  Llama-style decoder ({a['text_layers']} layers, width {a['text_hidden']}), {r['sft']['params']:,} parameters.
- Byte-level BPE tokenizer ({a['vocab_size']} tokens) trained in-repo on the training prompts and answers{', its merges crossing spaces (not lines or digits) so the long specialty prompts stay short' if a.get('merge_across_spaces') else ''}.
- Answers in the EVLF format `<think>...</think><answer>{{json}}</answer>`; boxes as 0-1 fractions of the image (the LLaVA family's convention in evlf).
- Shipped stage: **{r['shipped']}** (the better of the two on the held-out set, by the mean of the four goal metrics).

## Data
- Training: the `train` split of the evlf synthetic lesion set, seed {r['seed']}, {r['n_train']} cases
  (labels nodule / mass / cyst / normal; `evlf.eval.lesions.ensure_lesion_set`).
- Held-out: the `test` split of the same set ({r['held_out']['sft']['cases']} cases, disjoint by construction).
- Targets: the reasoning is a short template filled from the truth (appearance of the lesion type, coarse location);
  the confidence written in targets is a constant {0.9}, so the model's stated confidence is not calibrated.

## Recipe (seed {r['seed']})
1. SFT (`evlf train sft`, TRL SFTTrainer, completion-only loss, full fine-tuning, fp32 on CPU):
   {s['max_steps']} steps, batch {s['batch_size']}, lr {s['learning_rate']} cosine, weight decay {s['weight_decay']}.
2. GRPO (`evlf train grpo`, TRL GRPOTrainer): {g['max_steps']} steps, batch {g['batch_size']}, {g['num_generations']} generations per prompt,
   lr {g['learning_rate']}, temperature {g['temperature']}, beta {g['beta']}, rewards {json.dumps(g['reward_weights'])}
   (format: tags and a schema-valid answer; accuracy: the label; grounding: Hungarian-matched IoU as the eval harness computes it).

Rebuild: `make demo-model` (`python -m evlf.training.demo_model --seed {r['seed']}`); this run took {minutes:.1f} minutes on 2 CPU cores
shared with other work. Curves: `curves_sft.png`, `curves_grpo.png`; full numbers in `training_result.json`.

## Held-out metrics (lesions test split, greedy, no constrained decoding)

| stage | mIoU | Acc@0.5 | lesion-type accuracy | format validity |
|---|---|---|---|---|
{_row('SFT', held['sft'])}
{_row('SFT + GRPO', held['sft+grpo'])}

Goals: mIoU >= 0.6, Acc@0.5 >= 0.6, lesion-type accuracy >= 0.8, format validity >= 0.99.
Measured by `evlf.training.evaluate` with the training prompts ({'the graph' + "'" + 's own specialty prompts, as `evlf diagnose` and `evlf eval` send them' if s.get('prompts') == 'pipeline' else "the lesion set's question under the evlf system prompt; prompts built by the graphs differ and may score differently"}).

{pipeline_section(r)}{trials_section(r)}
## Limits
Synthetic lesions only; small images (resized to {a['image_size']} px); one or two lesions per image at most;
no real anatomy, modality physics or pathology. Not a medical device. Not for clinical use.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("build/demo-model"))
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--sft-steps", type=int, default=900)
    parser.add_argument("--grpo-steps", type=int, default=16)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--sft-lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    result = build(args.seed, args.work, args.out, args.n_train, args.sft_steps, args.grpo_steps, args.n_test, args.sft_lr)
    print(json.dumps({"shipped": result["shipped"], **{k: v for k, v in result["held_out"].items()}, "minutes": result["timings"]["total_s"] / 60}))


if __name__ == "__main__":
    main()

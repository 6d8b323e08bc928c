"""Rebuild the shipped `demo` model from a seed: `python -m evlf.training.demo_model --seed 0` (make demo-model).

Steps, each measured and written into training_result.json by this script:
0. generate the synthetic lesion set; train the Lite0 tower's detection head
   on frozen trunk features (with flips) and score it on the test split;
1. build a stock LLaVA model around that tower with a fresh decoder and a
   tokenizer fitted on the prompts and answers;
2. SFT (`evlf train sft`'s function) on the graph's own prompts, each target
   the reply the tower writes for that training image, so the decoder learns
   to transcribe its tower;
3. GRPO (`evlf train grpo`'s function) against the truth;
4. score both stages on the held-out split, ship the better one into
   evlf/models/demo/, then measure the shipped model through the pipeline
   (`evlf eval lesions-test --backend demo`, default context, graphs direct
   and full, and a fresh lesion set of another seed) and write the model card.
It knows synthetic lesions only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from evlf.training.config import GrpoSettings, SftSettings
from evlf.training.lite0_vlm import COPY_CIRCUIT, Lite0VlmConfig

THREADS = 2
DEMO_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"
SHIPPED = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
           "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def recipe(seed: int, sft_steps: int, grpo_steps: int, sft_lr: float = 2e-3) -> tuple[Lite0VlmConfig, SftSettings, GrpoSettings]:
    arch = Lite0VlmConfig()
    sft = SftSettings(seed=seed, learning_rate=sft_lr, batch_size=8, max_steps=sft_steps, warmup_ratio=0.05,
                      weight_decay=0.01, logging_steps=10, save_steps=100, threads=THREADS, prompts="pipeline", max_length=1536,
                      frozen=COPY_CIRCUIT)
    grpo = GrpoSettings(seed=seed, learning_rate=2e-5, batch_size=8, num_generations=4, max_steps=grpo_steps,
                        max_completion_length=160, temperature=1.0, logging_steps=5, save_steps=50, threads=THREADS,
                        prompts="pipeline", frozen=COPY_CIRCUIT)
    return arch, sft, grpo


def score(metrics: dict[str, Any]) -> float:
    """One number to choose the stage to ship: the mean of the four goal metrics."""
    return sum(float(metrics.get(k) or 0.0) for k in ("miou", "acc50", "accuracy", "format_validity")) / 4


def train_tower_head(train: Path, test: Path, arch: Lite0VlmConfig, seed: int, epochs: int, flips: int, work: Path) -> dict[str, Any]:
    """Stage 0: the detection head on frozen Lite0 features; its weights, its test scores and its decoded train output."""
    import torch

    from evlf.training.lite0_head import cache_features, head_metrics, predict, train_head
    from evlf.training.lite0_vlm import image_processor

    torch.set_num_threads(THREADS)
    t = time.time()
    ip = image_processor(arch)
    # cached per lesion set (its folder names seed and sizes), image size and flips
    tr = cache_features(train, ip, flips=flips, cache=work / f"features-{train.parent.name}-train-{arch.image_size}px-x{flips}.pt")
    te = cache_features(test, ip, flips=1, cache=work / f"features-{test.parent.name}-test-{arch.image_size}px.pt")
    cache_s = time.time() - t
    head, history = train_head(tr, epochs=epochs, seed=seed, width=arch.head_width)
    plain = _subset(tr, torch.arange(0, len(tr.labels), flips))  # the unflipped views, in case order
    found = predict(head, plain.feats, arch.second_box_threshold)
    return {
        "state": head.state_dict(),
        "train_found": found,
        "train_ids": plain.ids,
        "train_keys": plain.keys,
        "metrics": {"test": head_metrics(predict(head, te.feats, arch.second_box_threshold), te),
                    "train": head_metrics(found, plain)},
        "history": history,
        "settings": {"epochs": epochs, "flips": flips, "feature_cache_s": cache_s, "train_s": time.time() - t - cache_s},
    }


def cached_head(path: Path, train: Any) -> dict[str, Any]:
    """Stage 0's result from `path` when an earlier build of the same settings left it there, else trained and saved."""
    import torch

    if path.is_file():
        return torch.load(path, weights_only=False)
    head = train()
    torch.save(head, path)
    return head


def _subset(data: Any, idx: Any) -> Any:
    from evlf.training.lite0_head import Cached

    rows = idx.tolist()
    return Cached(data.feats[idx], data.labels[idx], [data.boxes[i] for i in rows], [data.ids[i] for i in rows],
                  [data.keys[i] for i in rows] if data.keys else [])


def pipeline_eval(dataset: str, graphs: list[str], out_dir: Path, limit: int | None = None) -> dict[str, Any]:
    """`evlf eval DATASET --backend demo --graph G` with the default context: the figures a user reproduces."""
    from evlf.eval.harness import evaluate, plan_runs
    from evlf.models.lite0_vision import MEMO

    MEMO.clear()  # the pipeline must run the tower itself
    if out_dir.exists():
        shutil.rmtree(out_dir)
    summary = evaluate(dataset, plan_runs(graphs, [], backend="demo"), out_dir, progress=False, concurrency=4, limit=limit)
    result = {}
    for name, run in summary["graphs"].items():
        o = run["overall"]
        result[name] = {k: o.get(k) for k in ("n_cases", "accuracy", "miou", "acc50", "n_no_answer", "f1_per_class", "ci")}
        result[name]["format_validity"] = 1 - o["n_no_answer"] / max(1, o["n_cls"])
        result[name]["command"] = f"evlf eval {dataset} --backend demo --graph {name.split(':')[0]} --out OUT"
    return result


def build(seed: int, work: Path, out: Path, n_train: int, sft_steps: int, grpo_steps: int, n_test: int = 200,
          sft_lr: float = 2e-3, head_epochs: int = 15, flips: int = 4, fresh_seed: int | None = 1) -> dict[str, Any]:
    """Build the demo model from its seed and return training_result.json's contents.

    Long because it is the recipe itself, stage after stage (head, SFT, GRPO, scoring),
    in the order the model card reports it; each stage is a call into its own module.
    """
    from evlf.eval.lesions import ensure_lesion_set
    from evlf.models.lite0_vision import MEMO, transcript
    from evlf.training.evaluate import evaluate_model
    from evlf.training.examples import answer_corpus, build_examples, with_completions
    from evlf.training.grpo import run_grpo
    from evlf.training.lite0_vlm import build_lite0_vlm
    from evlf.training.model_card import model_card
    from evlf.training.sft import run_sft

    t0 = time.time()
    load0 = list(os.getloadavg())  # the machine is shared: the timings depend on what else runs
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        timings[name] = time.time() - start
        print(f"{name}: {timings[name]:.0f}s", flush=True)
        return time.time()

    work.mkdir(parents=True, exist_ok=True)
    train = ensure_lesion_set("train", seed=seed, n_train=n_train, n_test=n_test)
    test = ensure_lesion_set("test", seed=seed, n_train=n_train, n_test=n_test)
    arch, sft_cfg, grpo_cfg = recipe(seed, sft_steps, grpo_steps, sft_lr)
    t = lap("data_s", t0)
    head = cached_head(work / f"head-{train.parent.name}-e{head_epochs}-x{flips}.pt", lambda: train_tower_head(train, test, arch, seed, head_epochs, flips, work))
    print("head held-out:", json.dumps(head["metrics"]["test"]), flush=True)
    if head.get("train_keys"):  # SFT and GRPO then skip the frozen trunk on these images
        MEMO.update(zip(head["train_keys"], head["train_found"], strict=True))
    t = lap("head_s", t)
    replies = {case_id: transcript(found) for case_id, found in zip(head["train_ids"], head["train_found"], strict=True)}
    (work / "sft.json").write_text(sft_cfg.model_dump_json(indent=1))
    (work / "grpo.json").write_text(grpo_cfg.model_dump_json(indent=1))
    examples = with_completions(build_examples(train, prompts="pipeline"), replies, train)
    base = build_lite0_vlm(work / "base", answer_corpus(examples), head["state"], arch, seed=seed)
    t = lap("base_s", t)
    sft = run_sft(train, base, work / "sft", sft_cfg, completions=replies)
    t = lap("sft_s", t)
    held = {"sft": evaluate_model(work / "sft", test, max_new_tokens=192, predictions=work / "sft_predictions.jsonl", prompts="pipeline")}
    print("SFT held-out:", json.dumps(held["sft"]), flush=True)
    t = lap("eval_sft_s", t)
    grpo = run_grpo(train, work / "sft", work / "grpo", grpo_cfg) if grpo_steps > 0 else None
    t = lap("grpo_s", t)
    if grpo is not None:
        held["sft+grpo"] = evaluate_model(work / "grpo", test, max_new_tokens=192, predictions=work / "grpo_predictions.jsonl",
                                          prompts="pipeline")
        print("SFT+GRPO held-out:", json.dumps(held["sft+grpo"]), flush=True)
    t = lap("eval_grpo_s", t)
    shipped = "sft+grpo" if "sft+grpo" in held and score(held["sft+grpo"]) >= score(held["sft"]) else "sft"
    src = work / ("grpo" if shipped == "sft+grpo" else "sft")
    out.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    for stage in ("sft", "grpo"):
        if (work / stage / "curves.png").exists():
            shutil.copy2(work / stage / "curves.png", out / f"curves_{stage}.png")
    result: dict[str, Any] = {
        "seed": seed, "shipped": shipped, "n_train": n_train, "n_test": n_test,
        "head": {k: v for k, v in head.items() if k not in ("state", "train_found", "train_keys")},
        "held_out": held,
        "sft": {k: v for k, v in sft.items() if k != "settings"},
        "grpo": {k: v for k, v in (grpo or {}).items() if k != "settings"},
        "architecture": arch.model_dump(), "sft_settings": sft_cfg.model_dump(),
        "grpo_settings": grpo_cfg.model_dump(),
        "timings": timings,
    }

    def write() -> None:  # after each measurement, so a long evaluation never loses what came before
        timings["total_s"] = time.time() - t0
        result["conditions"] = {"cpu_count": os.cpu_count(), "threads": THREADS, "load_average_start": load0,
                                "load_average_now": list(os.getloadavg())}
        (out / "training_result.json").write_text(json.dumps(result, indent=1, default=str))
        (out / "MODEL_CARD.md").write_text(model_card(result))

    write()
    if out.resolve() == DEMO_DIR.resolve():  # the pipeline runs the demo backend, which is this directory
        result["pipeline"] = {"lesions-test": {}}
        for graph in ("direct", "full"):
            result["pipeline"]["lesions-test"].update(pipeline_eval("lesions-test", [graph], work / f"eval_test_{graph}"))
            t = lap(f"pipeline_eval_{graph}_s", t)
            write()
        if fresh_seed is not None:
            fresh = ensure_lesion_set("test", seed=fresh_seed, n_train=0, n_test=n_test)
            result["pipeline"][f"fresh set, seed {fresh_seed}"] = pipeline_eval(str(fresh), ["direct"], work / "eval_fresh")
            t = lap("pipeline_eval_fresh_s", t)
            write()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("build/demo-model"))
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--n-train", type=int, default=4000, help="Training cases (4000: held-out type 0.92 against 0.89 at 2000).")
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--head-epochs", type=int, default=15)
    parser.add_argument("--flips", type=int, default=4, choices=(1, 2, 4))
    parser.add_argument("--sft-steps", type=int, default=160)
    parser.add_argument("--grpo-steps", type=int, default=2)
    parser.add_argument("--sft-lr", type=float, default=2e-3)
    parser.add_argument("--fresh-seed", type=int, default=1, help="Also measure on a fresh lesion set of this seed (-1: skip).")
    parser.add_argument("--card-only", action="store_true", help="Rewrite MODEL_CARD.md from OUT/training_result.json and stop.")
    args = parser.parse_args(argv)
    if args.card_only:
        from evlf.training.model_card import model_card

        (args.out / "MODEL_CARD.md").write_text(model_card(json.loads((args.out / "training_result.json").read_text())))
        return
    result = build(args.seed, args.work, args.out, args.n_train, args.sft_steps, args.grpo_steps, args.n_test, args.sft_lr,
                   args.head_epochs, args.flips, None if args.fresh_seed < 0 else args.fresh_seed)
    print(json.dumps({"shipped": result["shipped"], **result["held_out"], "minutes": result["timings"]["total_s"] / 60}))


if __name__ == "__main__":
    main()

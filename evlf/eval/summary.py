"""The eval summary: per run metrics (as `evlf score --json`), cost per case, paired comparisons; JSON, Markdown, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRIC_COLUMNS = {"accuracy": "accuracy", "f1_macro": "macro-F1", "miou": "mIoU", "acc50": "Acc@0.5", "vqa_exact_match": "VQA EM"}


def cost_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Latency distribution and model calls / tokens per case, from prediction lines."""
    ok = [r for r in rows if not r.get("error")]
    lat = np.array([r["latency_ms"] for r in ok if r.get("latency_ms") is not None], dtype=float)

    def per_case(key: str) -> float | None:
        return float(np.mean([r.get(key, 0) for r in ok])) if ok else None

    return {
        "latency_ms": {
            "mean": float(lat.mean()) if lat.size else None,
            "median": float(np.median(lat)) if lat.size else None,
            "p90": float(np.quantile(lat, 0.9)) if lat.size else None,
            "max": float(lat.max()) if lat.size else None,
        },
        "model_calls_per_case": per_case("model_calls"),
        "tokens_in_per_case": per_case("tokens_in"),
        "tokens_out_per_case": per_case("tokens_out"),
        "n_failed": len(rows) - len(ok),
        "untrained": any(r.get("trained") is False for r in ok),
    }


def _fmt(v: float | None, ci: list[float] | None = None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _groups(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("overall", run["overall"]), *((f"modality={k}", v) for k, v in run["by_modality"].items()),
            *((f"specialty={k}", v) for k, v in run["by_specialty"].items())]


def _cache_cell(run: dict[str, Any]) -> str:
    info = run.get("run") or {}
    hits, misses = info.get("cache_hits"), info.get("cache_misses")
    if hits is None or misses is None:
        return "-"
    return f"{hits} of {hits + misses}"


def to_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["graph", "group", "n_cases"]
    for m in METRIC_COLUMNS:
        header += [m, f"{m}_ci_low", f"{m}_ci_high"]
    header += ["latency_ms_mean", "latency_ms_median", "model_calls_per_case", "tokens_in_per_case", "tokens_out_per_case", "n_failed", "cache_hits", "cache_misses"]
    w.writerow(header)
    for name, run in summary["graphs"].items():
        for group, m in _groups(run):
            row: list[Any] = [name, group, m["n_cases"]]
            for k in METRIC_COLUMNS:
                ci = m["ci"].get(k) or [None, None]
                row += [m[k], ci[0], ci[1]]
            lat = run["latency_ms"]
            row += [lat["mean"], lat["median"], run["model_calls_per_case"], run["tokens_in_per_case"], run["tokens_out_per_case"], run["n_failed"],
                    run.get("run", {}).get("cache_hits"), run.get("run", {}).get("cache_misses")]
            w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def to_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# evlf eval: {summary['dataset']}", "", f"{summary['n_cases']} cases; 95% bootstrap intervals in brackets.", ""]
    if any(run["untrained"] for run in summary["graphs"].values()):
        lines += ["**Untrained model:** these numbers measure the pipeline's plumbing, not a model's skill.", ""]
    cols = ["graph", "group", "n", *METRIC_COLUMNS.values()]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, run in summary["graphs"].items():
        for group, m in _groups(run):
            cells = [name, group, str(m["n_cases"]), *(_fmt(m[k], m["ci"].get(k)) for k in METRIC_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Cost per case", "", "| graph | latency mean ms | median ms | p90 ms | model calls | tokens in | tokens out | failed | calls from cache (this run) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, run in summary["graphs"].items():
        lat = run["latency_ms"]
        cells = [name, _fmt(lat["mean"]), _fmt(lat["median"]), _fmt(lat["p90"]), _fmt(run["model_calls_per_case"]),
                 _fmt(run["tokens_in_per_case"]), _fmt(run["tokens_out_per_case"]), str(run["n_failed"]), _cache_cell(run)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Latency is wall time per case as the pipeline measured it; cases whose model calls came from the cache "
              "(a re-run, a resumed run, or a graph repeating another graph's exact request) show no model time."]
    if summary.get("comparisons"):
        lines += ["", "## Paired comparisons (B - A, same cases)", "", "| B vs A | metric | A | B | B - A | 95% CI | p |", "|---|---|---|---|---|---|---|"]
        for cmp in summary["comparisons"]:
            for metric, v in cmp.items():
                if not isinstance(v, dict):
                    continue
                p = v.get("mcnemar_p", v.get("wilcoxon_p"))
                ci = v.get("ci")
                cells = [f"{cmp['b']} vs {cmp['a']}", metric, _fmt(v["a"]), _fmt(v["b"]), _fmt(v["diff"]),
                         f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-", _fmt(p)]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, Any], out_dir: Path) -> list[Path]:
    paths = [out_dir / "summary.json", out_dir / "summary.md", out_dir / "summary.csv"]
    paths[0].write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(to_markdown(summary), encoding="utf-8")
    paths[2].write_text(to_csv(summary), encoding="utf-8", newline="")
    return paths

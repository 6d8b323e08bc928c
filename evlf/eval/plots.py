"""Matplotlib figures of an eval summary: per-modality metric bars with CI whiskers, latency distributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BAR_METRICS = {"accuracy": "accuracy", "f1_macro": "macro-F1", "miou": "mIoU", "acc50": "Acc@0.5"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_metrics_by_modality(summary: dict[str, Any], path: Path) -> Path:
    """One panel per metric; per modality (and overall) a bar per graph, whiskers at the 95% CI."""
    plt = _pyplot()
    runs = summary["graphs"]
    groups = ["overall", *sorted({m for run in runs.values() for m in run["by_modality"]})]
    fig, axes = plt.subplots(len(BAR_METRICS), 1, figsize=(max(6.0, 1.2 * len(groups) * max(1, len(runs)) ** 0.5 + 2), 2.6 * len(BAR_METRICS)), squeeze=False)
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(groups))
    for ax, (key, title) in zip(axes[:, 0], BAR_METRICS.items(), strict=True):
        for r, (name, run) in enumerate(runs.items()):
            vals, lo, hi = [], [], []
            for g in groups:
                m = run["overall"] if g == "overall" else run["by_modality"].get(g)
                v = None if m is None else m.get(key)
                ci = None if m is None else m["ci"].get(key)
                vals.append(np.nan if v is None else v)
                lo.append(0.0 if v is None or ci is None else max(0.0, v - ci[0]))
                hi.append(0.0 if v is None or ci is None else max(0.0, ci[1] - v))
            ax.bar(x + (r - (len(runs) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=3, label=name)
        ax.set_title(title)
        ax.set_xticks(x, groups)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=min(4, len(names)), fontsize="small")
    fig.suptitle(f"{summary['dataset']} ({summary['n_cases']} cases)", x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(latencies: dict[str, Sequence[float]], path: Path) -> Path:
    """Per-case latency of each graph as a box plot with the cases overlaid."""
    plt = _pyplot()
    names = list(latencies)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 2), 4))
    data = [np.asarray(latencies[n], dtype=float) for n in names]
    ax.boxplot([d if d.size else np.array([np.nan]) for d in data], showfliers=False)
    ax.set_xticks(np.arange(1, len(names) + 1), names)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, d.size), d, s=6, alpha=0.5)
    ax.set_ylabel("latency per case (ms)")
    ax.set_title("Latency distribution")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

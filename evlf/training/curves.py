"""Training curves (loss and each reward) from a Trainer log history, as one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def curve_series(history: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """step -> value series for the loss and every logged reward."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for entry in history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            wanted = key == "loss" or key == "reward" or (key.startswith("rewards/") and key.endswith("/mean"))
            if wanted and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(int(step))
                ys.append(float(value))
    return series


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "training") -> Path | None:
    """Write the curves; None when nothing was logged."""
    series = curve_series(history)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3.2), squeeze=False)
    for ax, (name, (xs, ys)) in zip(axes[0], sorted(series.items()), strict=True):
        ax.plot(xs, ys, marker=".", linewidth=1)
        ax.set_title(name.removeprefix("rewards/").removesuffix("/mean"))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

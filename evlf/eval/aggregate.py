"""Case results to the summary `evlf score --json` prints: overall, per modality, per specialty, with CIs.

Confidence intervals are percentile bootstraps over cases (resampling whole
cases, so a case's several boxes stay together), seeded for reproducibility.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from evlf.eval.metrics import NO_ANSWER, classification_metrics, fast_macro_f1, grounding_metrics
from evlf.eval.scoring import CaseResult

METRICS = ("accuracy", "f1_macro", "miou", "acc50", "vqa_exact_match")
DEFAULT_BOOTSTRAP = 1000
DEFAULT_CI = 0.95


def encode_labels(true: Sequence[str], pred: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for the bootstrap; NO_ANSWER gets code n_classes."""
    classes = sorted((set(true) | set(pred)) - {NO_ANSWER})
    index = {c: i for i, c in enumerate(classes)}
    n = len(classes)
    return (
        np.array([index[t] for t in true], dtype=np.int64),
        np.array([index.get(p, n) for p in pred], dtype=np.int64),
        n,
    )


def percentile_ci(values: np.ndarray, level: float) -> list[float] | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def resamples(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """n_boot index arrays drawn with replacement from range(n), one at a time (memory stays O(n))."""
    for _ in range(n_boot):
        yield rng.integers(0, n, size=n)


def bootstrap(n: int, stat: Callable[[np.ndarray], float], n_boot: int, seed: int) -> np.ndarray:
    """`stat` on n_boot resamples (with replacement) of range(n)."""
    rng = np.random.default_rng(seed)
    return np.array([stat(idx) for idx in resamples(n, n_boot, rng)], dtype=float)


def group_metrics(results: Sequence[CaseResult], *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = DEFAULT_CI) -> dict[str, Any]:
    """Point estimates, counts and bootstrap CIs for one group of cases; a metric is None where no case has it."""
    cls = [r for r in results if r.label_true is not None]
    grd = [r for r in results if r.ious is not None]
    vqa = [r for r in results if r.vqa_correct is not None]
    y_true = [r.label_true for r in cls]
    y_pred = [r.label_pred or NO_ANSWER for r in cls]
    c = classification_metrics(y_true, y_pred)  # type: ignore[arg-type]
    entries = [v for r in grd for v in (r.ious or [])]
    g = grounding_metrics(entries)
    out: dict[str, Any] = {
        "accuracy": c["accuracy"],
        "f1_macro": c["f1_macro"],
        "miou": g["miou"],
        "acc50": g["acc50"],
        "vqa_exact_match": float(np.mean([r.vqa_correct for r in vqa])) if vqa else None,
        "n_cases": len(results),
        "n_cls": len(cls),
        "n_no_answer": sum(1 for p in y_pred if p == NO_ANSWER),
        "n_grounding": len(grd),
        "n_boxes": len(entries),
        "n_vqa_closed": len(vqa),
        "f1_per_class": c["f1_per_class"],
        "support": {label: y_true.count(label) for label in c["f1_per_class"]},  # type: ignore[union-attr]
    }
    ci: dict[str, list[float] | None] = {m: None for m in METRICS}
    if n_boot > 0:
        if len(cls) >= 2:
            t, p, k = encode_labels(y_true, y_pred)  # type: ignore[arg-type]
            correct = (t == p).astype(float)
            ci["accuracy"] = percentile_ci(bootstrap(len(cls), lambda i: correct[i].mean(), n_boot, seed), level)
            ci["f1_macro"] = percentile_ci(bootstrap(len(cls), lambda i: fast_macro_f1(t[i], p[i], k), n_boot, seed), level)
        if len(grd) >= 2:
            sums = np.array([sum(r.ious or []) for r in grd])
            hits = np.array([sum(v >= 0.5 for v in (r.ious or [])) for r in grd], dtype=float)
            counts = np.array([len(r.ious or []) for r in grd], dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                ci["miou"] = percentile_ci(bootstrap(len(grd), lambda i: sums[i].sum() / counts[i].sum(), n_boot, seed), level)
                ci["acc50"] = percentile_ci(bootstrap(len(grd), lambda i: hits[i].sum() / counts[i].sum(), n_boot, seed), level)
        if len(vqa) >= 2:
            ok = np.array([r.vqa_correct for r in vqa], dtype=float)
            ci["vqa_exact_match"] = percentile_ci(bootstrap(len(vqa), lambda i: ok[i].mean(), n_boot, seed), level)
    out["ci"] = ci
    return out


def grouped(results: Sequence[CaseResult], key: str) -> dict[str, list[CaseResult]]:
    """Cases by a field's value; cases without it are left out of the grouping (they still count overall)."""
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        value = getattr(r, key)
        if value is not None:
            groups.setdefault(value, []).append(r)
    return dict(sorted(groups.items()))


def summarise(results: Sequence[CaseResult], *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = DEFAULT_CI) -> dict[str, Any]:
    """The `evlf score --json` object: overall, by_modality, by_specialty and the settings used."""
    kw = {"n_boot": n_boot, "seed": seed, "level": level}
    return {
        "n_cases": len(results),
        "overall": group_metrics(results, **kw),
        "by_modality": {m: group_metrics(rs, **kw) for m, rs in grouped(results, "modality").items()},
        "by_specialty": {s: group_metrics(rs, **kw) for s, rs in grouped(results, "specialty").items()},
        "settings": {
            "bootstrap_resamples": n_boot,
            "seed": seed,
            "ci_level": level,
            "box_matching": "one-to-one Hungarian on IoU per case; unmatched true and surplus predicted boxes count IoU 0",
            "iou_hit": 0.5,
        },
    }

"""Paired comparison of two graphs (or contexts) on the same cases.

Differences are B minus A. Accuracy: exact McNemar test on the discordant
cases (scipy's binomial test) and a paired bootstrap CI. macro-F1, mIoU and
Acc@0.5: paired bootstrap CIs (the same resampled cases for both); mIoU also
gets a Wilcoxon signed-rank test on per-case mean IoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evlf.core.errors import InputError
from evlf.eval.aggregate import DEFAULT_BOOTSTRAP, DEFAULT_CI, encode_labels, percentile_ci, resamples
from evlf.eval.metrics import NO_ANSWER, fast_macro_f1
from evlf.eval.scoring import CaseResult


def _align(a: Sequence[CaseResult], b: Sequence[CaseResult]) -> list[tuple[CaseResult, CaseResult]]:
    by_id = {r.id: r for r in b}
    ids_a = {r.id for r in a}
    if ids_a != set(by_id):
        only_a = sorted(ids_a - set(by_id))[:5]
        only_b = sorted(set(by_id) - ids_a)[:5]
        raise InputError(None, f"the two runs cover different cases (only in A: {only_a}; only in B: {only_b})")
    return [(r, by_id[r.id]) for r in a]


def paired_comparison(
    a: Sequence[CaseResult],
    b: Sequence[CaseResult],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = DEFAULT_CI,
) -> dict[str, Any]:
    """Per metric: value for A, value for B, difference B - A, its CI, and a p-value where a test applies."""
    pairs = _align(a, b)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n_cases": len(pairs)}
    cls = [(x, y) for x, y in pairs if x.label_true is not None]
    if cls:
        out.update(_compare_labels(cls, n_boot, rng, level))
    grd = [(x, y) for x, y in pairs if x.ious is not None and y.ious is not None]
    if grd:
        out.update(_compare_boxes(grd, n_boot, rng, level))
    return out


def _compare_labels(cls: list[tuple[CaseResult, CaseResult]], n_boot: int, rng: np.random.Generator, level: float) -> dict[str, Any]:
    """Accuracy (with an exact McNemar test) and macro-F1, paired per case."""
    from scipy.stats import binomtest

    true = [x.label_true or "" for x, _ in cls]
    pa = [x.label_pred or NO_ANSWER for x, _ in cls]
    pb = [y.label_pred or NO_ANSWER for _, y in cls]
    t, ca, k = encode_labels(true + true, pa + pb)
    t, ca, cb = t[: len(cls)], ca[: len(cls)], ca[len(cls) :]
    ok_a, ok_b = ca == t, cb == t
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
    p_mcnemar = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    d_acc, d_f1 = np.empty(n_boot), np.empty(n_boot)
    for j, i in enumerate(resamples(len(cls), n_boot, rng)):
        d_acc[j] = ok_b[i].mean() - ok_a[i].mean()
        d_f1[j] = fast_macro_f1(t[i], cb[i], k) - fast_macro_f1(t[i], ca[i], k)
    f1_a, f1_b = fast_macro_f1(t, ca, k), fast_macro_f1(t, cb, k)
    return {
        "accuracy": {
            "a": float(ok_a.mean()),
            "b": float(ok_b.mean()),
            "diff": float(ok_b.mean() - ok_a.mean()),
            "ci": percentile_ci(d_acc, level),
            "mcnemar_p": float(p_mcnemar),
            "only_a_correct": only_a,
            "only_b_correct": only_b,
        },
        "f1_macro": {"a": f1_a, "b": f1_b, "diff": f1_b - f1_a, "ci": percentile_ci(d_f1, level)},
    }


def _compare_boxes(grd: list[tuple[CaseResult, CaseResult]], n_boot: int, rng: np.random.Generator, level: float) -> dict[str, Any]:
    """mIoU (with a Wilcoxon test on per-case IoU) and Acc@0.5, paired per case."""
    from scipy.stats import wilcoxon

    sa = np.array([sum(x.ious or []) for x, _ in grd])
    sb = np.array([sum(y.ious or []) for _, y in grd])
    na = np.array([len(x.ious or []) for x, _ in grd], dtype=float)
    nb = np.array([len(y.ious or []) for _, y in grd], dtype=float)
    ha = np.array([sum(v >= 0.5 for v in (x.ious or [])) for x, _ in grd], dtype=float)
    hb = np.array([sum(v >= 0.5 for v in (y.ious or [])) for _, y in grd], dtype=float)
    d_miou, d_acc50 = np.empty(n_boot), np.empty(n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, i in enumerate(resamples(len(grd), n_boot, rng)):
            d_miou[j] = sb[i].sum() / nb[i].sum() - sa[i].sum() / na[i].sum()
            d_acc50[j] = hb[i].sum() / nb[i].sum() - ha[i].sum() / na[i].sum()
        per_a = np.where(na > 0, sa / np.maximum(na, 1), np.nan)
        per_b = np.where(nb > 0, sb / np.maximum(nb, 1), np.nan)
    diffs = (per_b - per_a)[np.isfinite(per_b - per_a)]
    p_w = float(wilcoxon(diffs).pvalue) if np.any(diffs != 0) else 1.0
    miou_a, miou_b = sa.sum() / max(na.sum(), 1), sb.sum() / max(nb.sum(), 1)
    acc_a, acc_b = ha.sum() / max(na.sum(), 1), hb.sum() / max(nb.sum(), 1)
    return {
        "miou": {"a": float(miou_a), "b": float(miou_b), "diff": float(miou_b - miou_a), "ci": percentile_ci(d_miou, level), "wilcoxon_p": p_w},
        "acc50": {"a": float(acc_a), "b": float(acc_b), "diff": float(acc_b - acc_a), "ci": percentile_ci(d_acc50, level)},
    }

"""Metrics against scikit-learn and IoU computed by hand on cases built here."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from evlf.eval.aggregate import encode_labels, group_metrics
from evlf.eval.metrics import (
    NO_ANSWER,
    box_iou_matrix,
    case_box_ious,
    classification_metrics,
    exact_match,
    fast_macro_f1,
    grounding_metrics,
    is_closed,
    match_boxes,
)
from evlf.eval.scoring import CaseResult


def test_iou_matrix_matches_hand_computation() -> None:
    # [0,0,10,10] vs [5,0,15,10]: intersection 5x10=50, union 100+100-50=150
    # [0,0,10,10] vs [0,0,10,5]: intersection 50, union 100
    m = box_iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [0, 0, 10, 5], [20, 20, 30, 30]])
    assert m.shape == (1, 3)
    assert m[0, 0] == pytest.approx(50 / 150)
    assert m[0, 1] == pytest.approx(0.5)
    assert m[0, 2] == 0.0


def test_degenerate_boxes_have_iou_zero() -> None:
    assert box_iou_matrix([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0] == 0.0


def test_no_predicted_box_counts_zero_per_true_box() -> None:
    assert case_box_ious([], [[0, 0, 10, 10], [20, 20, 30, 30]]) == [0.0, 0.0]


def test_hungarian_matching_is_one_to_one_and_maximises_total_iou() -> None:
    true = [[0, 0, 10, 10], [8, 0, 18, 10]]
    # pred 0 overlaps both trues; pred 1 only true 1. A greedy matcher would give pred 0 to
    # true 1 (higher single IoU) and leave true 0 with 0; Hungarian gives pred0->true0, pred1->true1.
    pred = [[6, 0, 16, 10], [8, 0, 18, 10]]
    iou_00 = 4 * 10 / (200 - 40)  # [6,16] vs [0,10]: overlap 4
    pairs = match_boxes(pred, true)
    assert sorted((p, t) for p, t, _ in pairs) == [(0, 0), (1, 1)]
    assert case_box_ious(pred, true) == pytest.approx([iou_00, 1.0])


def test_surplus_predicted_boxes_count_zero() -> None:
    true = [[0, 0, 10, 10]]
    pred = [[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 5, 5]]
    entries = case_box_ious(pred, true)
    assert entries == pytest.approx([1.0, 0.0, 0.0])
    g = grounding_metrics(entries)
    assert g["miou"] == pytest.approx(1 / 3)
    assert g["acc50"] == pytest.approx(1 / 3)


def test_no_boxes_at_all_gives_no_entries() -> None:
    assert case_box_ious([], []) == []
    assert grounding_metrics([]) == {"miou": None, "acc50": None}


def test_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    labels = ["cyst", "mass", "nodule", "normal"]
    y_true = list(rng.choice(labels, 60))
    y_pred = list(rng.choice(labels[:3] + ["calcification"], 60))  # 'normal' never predicted, 'calcification' never true
    got = classification_metrics(y_true, y_pred)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    classes = sorted(set(y_true) | set(y_pred))
    per = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    assert got["f1_per_class"] == pytest.approx(dict(zip(classes, per)))
    assert got["f1_per_class"]["calcification"] == 0.0


def test_empty_class_is_not_averaged_and_no_answer_is_not_a_class() -> None:
    # 'mass' appears in neither list: it is not in the macro average.
    y_true = ["cyst", "cyst", "nodule", "nodule"]
    y_pred = ["cyst", NO_ANSWER, "nodule", "cyst"]
    got = classification_metrics(y_true, y_pred)
    assert set(got["f1_per_class"]) == {"cyst", "nodule"}
    # cyst: tp1 fp1 fn1 -> 0.5; nodule: tp1 fp0 fn1 -> 2/3
    assert got["f1_macro"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert got["accuracy"] == pytest.approx(0.5)
    sk = f1_score(y_true, y_pred, labels=["cyst", "nodule"], average="macro", zero_division=0)
    assert got["f1_macro"] == pytest.approx(sk)


def test_fast_macro_f1_equals_sklearn_on_resamples() -> None:
    rng = np.random.default_rng(0)
    y_true = list(rng.choice(["a", "b", "c"], 40))
    y_pred = list(rng.choice(["a", "b", "d", NO_ANSWER], 40))
    t, p, k = encode_labels(y_true, y_pred)
    for _ in range(20):
        i = rng.integers(0, 40, 40)
        tt, pp = [y_true[j] for j in i], [y_pred[j] for j in i]
        expected = classification_metrics(tt, pp)["f1_macro"]
        assert fast_macro_f1(t[i], p[i], k) == pytest.approx(expected)


def test_vqa_exact_match_normalises() -> None:
    assert exact_match("Yes.", "yes")
    assert exact_match("  the Left lung ", "left lung")
    assert not exact_match("no", "yes")
    assert not exact_match(None, "yes")
    assert is_closed("No", None) and not is_closed("left lower lobe", None)
    assert is_closed("left", "closed")


def test_group_metrics_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    results = [
        CaseResult(id=str(i), label_true=str(rng.integers(3)), label_pred=str(rng.integers(3)), ious=[float(rng.random())])
        for i in range(50)
    ]
    a = group_metrics(results, n_boot=300, seed=7)
    b = group_metrics(results, n_boot=300, seed=7)
    assert a == b
    for metric in ("accuracy", "f1_macro", "miou", "acc50"):
        lo, hi = a["ci"][metric]
        assert lo <= a[metric] <= hi
        assert lo < hi
    assert a["ci"]["vqa_exact_match"] is None and a["vqa_exact_match"] is None

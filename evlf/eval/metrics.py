"""The paper's metrics: accuracy, macro-F1, mean IoU, Acc@0.5, and closed-VQA exact match.

Classification uses scikit-learn. Grounding matches predicted to true boxes
one-to-one per case with the Hungarian algorithm on IoU
(scipy.optimize.linear_sum_assignment, maximising the summed IoU); then every
true box contributes its matched IoU (0 when it got no predicted box) and
every predicted box left over contributes a 0 as well, so a case yields
max(n_true, n_pred) IoU entries and drawing extra boxes is penalised instead
of free. mIoU is the mean of all entries pooled over cases; Acc@0.5 is the
fraction of entries with IoU >= 0.5. Matching ignores box labels
(class-agnostic), as the lesion benchmark has one label per case.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

from evlf.core.geometry import BoxLike, box_iou_matrix

#: Stands for "the model gave no label" in y_pred; never a class of its own.
NO_ANSWER = "\x00no-answer"
IOU_HIT = 0.5


def match_boxes(pred: Sequence[BoxLike], true: Sequence[BoxLike]) -> list[tuple[int, int, float]]:
    """One-to-one (pred index, true index, IoU) pairs maximising the summed IoU; pairs with IoU 0 are dropped."""
    if len(pred) == 0 or len(true) == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    ious = box_iou_matrix(pred, true)
    rows, cols = linear_sum_assignment(ious, maximize=True)
    return [(int(r), int(c), float(ious[r, c])) for r, c in zip(rows, cols, strict=True) if ious[r, c] > 0]


def case_box_ious(pred: Sequence[BoxLike], true: Sequence[BoxLike]) -> list[float]:
    """The case's max(n_true, n_pred) IoU entries: one per true box (matched IoU or 0), a 0 per surplus predicted box."""
    pairs = match_boxes(pred, true)
    by_true = {t: v for _, t, v in pairs}
    entries = [by_true.get(j, 0.0) for j in range(len(true))]
    return entries + [0.0] * max(0, len(pred) - len(true))


def grounding_metrics(entries: Sequence[float]) -> dict[str, float | None]:
    """mIoU and Acc@0.5 over pooled IoU entries; None when there are none."""
    if len(entries) == 0:
        return {"miou": None, "acc50": None}
    arr = np.asarray(entries, dtype=float)
    return {"miou": float(arr.mean()), "acc50": float((arr >= IOU_HIT).mean())}


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, object]:
    """Accuracy, macro-F1 and per-class F1 (scikit-learn).

    Classes are those seen in y_true or y_pred (scikit-learn's default), minus
    NO_ANSWER, which only counts as a wrong prediction of the true class.
    """
    from sklearn.metrics import accuracy_score, f1_score

    if len(y_true) == 0:
        return {"accuracy": None, "f1_macro": None, "f1_per_class": {}}
    classes = sorted((set(y_true) | set(y_pred)) - {NO_ANSWER})
    per_class = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0.0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(np.mean(per_class)) if classes else None,
        "f1_per_class": {c: float(v) for c, v in zip(classes, per_class, strict=True)},
    }


def fast_macro_f1(true_codes: np.ndarray, pred_codes: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over classes present in either array, on integer codes (code n_classes = no answer).

    Equal to `classification_metrics` (tested); used inside the bootstrap where
    scikit-learn's per-call overhead would dominate.
    """
    size = n_classes + 1
    tp = np.bincount(true_codes[true_codes == pred_codes], minlength=size)[:n_classes]
    n_true = np.bincount(true_codes, minlength=size)[:n_classes]
    n_pred = np.bincount(pred_codes, minlength=size)[:n_classes]
    denom = n_true + n_pred
    present = denom > 0
    if not present.any():
        return float("nan")
    return float(np.mean(2 * tp[present] / denom[present]))


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str | None) -> str:
    """Lower case, no punctuation, no articles, single spaces: 'Yes.' == 'yes'."""
    if text is None:
        return ""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


CLOSED_ANSWERS = frozenset({"yes", "no"})


def is_closed(answer: str | None, answer_type: str | None) -> bool:
    """A closed question: declared `answer_type: closed`, or undeclared with a yes/no reference answer."""
    if answer_type is not None:
        return answer_type == "closed"
    return normalise_answer(answer) in CLOSED_ANSWERS


def exact_match(pred: str | None, true: str | None) -> bool:
    return pred is not None and normalise_answer(pred) == normalise_answer(true)

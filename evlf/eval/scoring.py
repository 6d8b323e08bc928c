"""Predictions against truth, case by case: the model-independent part of evaluation.

`score_files` reads a predictions JSONL and a truth JSONL (the dataset format,
or just ids with `label`/`boxes`/`answer`), refuses anything that would give a
wrong number (ids that disagree, missing fields, reversed boxes, labels outside
the label set) with one error listing the first offending lines, and returns
one `CaseResult` per case for `evlf.eval.aggregate` to summarise.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evlf.core.errors import InputError
from evlf.core.dataset import BoxList, CaseTask, check_boxes, format_line_errors, read_jsonl_models
from evlf.eval.metrics import NO_ANSWER, case_box_ious, exact_match, is_closed

UnknownLabels = Literal["error", "wrong"]
SCORING_FILE = "scoring.json"  # beside each run's predictions.jsonl: how `evlf eval` scored them


class ScoringSettings(BaseModel):
    """How a predictions file was scored, so `evlf score` on eval's output reproduces eval's numbers exactly."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    unknown_labels: UnknownLabels = "wrong"
    bootstrap: int = Field(ge=0)
    seed: int = 0

    def write(self, folder: Path) -> Path:
        path = Path(folder) / SCORING_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def beside(cls, predictions: Path) -> ScoringSettings | None:
        """The settings written next to a predictions file, or None when there are none."""
        path = Path(predictions).parent / SCORING_FILE
        if not path.is_file():
            return None
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(path, f"invalid scoring settings ({' '.join(str(exc).split())[:200]})") from None


class TruthLine(BaseModel):
    """A truth line: a dataset case, of which scoring needs only these fields."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    task: CaseTask | None = None
    label: str | None = None
    labels: list[str] = Field(default_factory=list)
    boxes: BoxList | None = None
    answer: str | None = None
    answer_type: Literal["closed", "open"] | None = None
    modality: str | None = None
    specialty: str | None = None

    _boxes_ok = field_validator("boxes")(check_boxes)

    @property
    def scores_label(self) -> bool:
        return self.label is not None and self.task != "vqa"

    @property
    def scores_boxes(self) -> bool:
        return self.boxes is not None

    @property
    def scores_answer(self) -> bool:
        return self.task == "vqa" and self.answer is not None and is_closed(self.answer, self.answer_type)


class PredictionLine(BaseModel):
    """A prediction line, as `evlf eval` writes it; extra fields (latency, model calls) are kept."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    label: str | None = None
    boxes: BoxList | None = None
    answer: str | None = None

    _boxes_ok = field_validator("boxes")(check_boxes)


class CaseResult(BaseModel):
    """What one case contributes to each metric; None where the metric does not apply to it."""

    id: str
    modality: str | None = None
    specialty: str | None = None
    label_true: str | None = None
    label_pred: str | None = None  # NO_ANSWER when the model gave none
    ious: list[float] | None = None
    vqa_correct: bool | None = None


def score_case(truth: TruthLine, pred: PredictionLine, label_set: set[str] | None = None) -> CaseResult:
    """One case's contribution; a predicted label outside `label_set` counts as no answer."""
    result = CaseResult(id=truth.id, modality=truth.modality, specialty=truth.specialty)
    if truth.scores_label:
        label = pred.label
        if label is None or (label_set is not None and label not in label_set):
            label = NO_ANSWER
        result.label_true, result.label_pred = truth.label, label
    if truth.scores_boxes:
        result.ious = case_box_ious(pred.boxes or [], truth.boxes or [])
    if truth.scores_answer:
        result.vqa_correct = exact_match(pred.answer, truth.answer)
    return result


def truth_label_set(truths: Iterable[TruthLine]) -> set[str]:
    labels: set[str] = set()
    for t in truths:
        if t.label is not None:
            labels.add(t.label)
        labels.update(t.labels)
    return labels


def match_lines(
    pred_path: Path,
    truth_path: Path,
    preds: list[tuple[int, PredictionLine]],
    truths: list[tuple[int, TruthLine]],
    label_set: set[str] | None,
    unknown_labels: UnknownLabels,
) -> list[tuple[TruthLine, PredictionLine]]:
    """Pair lines by id, raising one InputError that lists every kind of problem found (first lines of each)."""
    pred_by_id = {p.id: (n, p) for n, p in preds}
    truth_ids = {t.id for _, t in truths}
    problems: list[str] = []

    missing = [(n, f"id {t.id!r} has no prediction") for n, t in truths if t.id not in pred_by_id]
    extra = [(n, f"id {p.id!r} is not in the truth") for n, p in preds if p.id not in truth_ids]
    if missing:
        problems.append(f"{truth_path}: {format_line_errors(missing)}")
    if extra:
        problems.append(f"{pred_path}: {format_line_errors(extra)}")

    fields: list[tuple[int, str]] = []
    for tn, t in truths:
        if t.id not in pred_by_id:
            continue
        pn, p = pred_by_id[t.id]
        needed = [
            name
            for name, wanted in (("label", t.scores_label), ("boxes", t.scores_boxes), ("answer", t.scores_answer))
            if wanted and name not in p.model_fields_set
        ]
        if needed:
            fields.append((pn, f"missing {', '.join(repr(f) for f in needed)} (truth line {tn} has it)"))
    if fields:
        problems.append(f"{pred_path}: {format_line_errors(fields)}")

    if label_set is not None:
        bad_truth = [(n, f"label {t.label!r} is outside the label set") for n, t in truths if t.label is not None and t.label not in label_set]
        if bad_truth:
            problems.append(f"{truth_path}: {format_line_errors(bad_truth)}")
    known = label_set if label_set is not None else truth_label_set(t for _, t in truths)
    if unknown_labels == "error":
        bad_pred = [
            (n, f"label {p.label!r} is outside the label set")
            for n, p in preds
            if p.label is not None and p.label not in known and p.id in truth_ids
        ]
        if bad_pred:
            shown = sorted(known)[:12]
            problems.append(f"{pred_path}: {format_line_errors(bad_pred)} (label set: {shown}{' ...' if len(known) > 12 else ''}; pass --labels to widen it)")

    if problems:
        raise InputError(None, " | ".join(problems))
    return [(t, pred_by_id[t.id][1]) for _, t in truths]


def score_files(
    pred_path: str | Path,
    truth_path: str | Path,
    *,
    labels: Iterable[str] | None = None,
    unknown_labels: UnknownLabels = "error",
) -> list[CaseResult]:
    """Case results for every truth line. `labels` fixes the label set (default: the truth's labels).

    With unknown_labels="wrong" a predicted label outside the set counts as a
    wrong answer instead of an error (what `evlf eval` uses for free-text models).
    """
    pred_path, truth_path = Path(pred_path), Path(truth_path)
    truths = read_jsonl_models(truth_path, TruthLine)
    preds = read_jsonl_models(pred_path, PredictionLine)
    label_set = set(labels) if labels is not None else None
    pairs = match_lines(pred_path, truth_path, preds, truths, label_set, unknown_labels)
    known = label_set if label_set is not None else truth_label_set(t for t, _ in pairs)
    return [score_case(t, p, known) for t, p in pairs]

"""Rule-based rewards for GRPO, each in [0, 1] per completion.

TRL calls a reward as `fn(prompts=..., completions=..., **columns)`; the
truth arrives in the dataset's extra columns `truth_label` and `truth_boxes`
(JSON list of boxes in the model's own convention, as the targets were
written). Boxes are matched one-to-one with the Hungarian algorithm exactly as
the evaluation harness matches them (evlf.eval.metrics.case_box_ious), so the
reward optimises the metric we report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from evlf.core.answer import EvlfAnswer

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_SHAPE = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of a completion, whether TRL passes a string or conversational turns."""
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for turn in completion:
        content = turn.get("content", "") if isinstance(turn, dict) else str(turn)
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "".join(parts)


def parse_answer(text: str) -> EvlfAnswer | None:
    """The validated answer when the text has the EVLF shape, else None."""
    match = _SHAPE.match(text)
    if match is None:
        return None
    try:
        return EvlfAnswer.model_validate_json(match.group(2))
    except (ValidationError, ValueError):
        return None


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1 for exactly <think>..</think><answer>{valid EvlfAnswer}</answer>; else 0.5 x the share of the four tags present.

    The partial credit gives a young model a gradient towards the shape before it ever writes it whole.
    """
    scores = []
    for c in completions:
        text = completion_text(c)
        if parse_answer(text) is not None:
            scores.append(1.0)
        else:
            scores.append(0.5 * sum(tag in text for tag in _TAGS) / len(_TAGS))
    return scores


def accuracy_reward(completions: Sequence[Any], truth_label: Sequence[str], **_: Any) -> list[float]:
    """1 when the diagnosis names the true label (case-insensitive), else 0 (also for unparseable replies)."""
    scores = []
    for c, label in zip(completions, truth_label, strict=True):
        answer = parse_answer(completion_text(c))
        ok = answer is not None and answer.diagnosis.strip().lower() == (label or "").strip().lower()
        scores.append(1.0 if ok else 0.0)
    return scores


def box_score(pred: Sequence[Sequence[float]], true: Sequence[Sequence[float]]) -> float:
    """Mean Hungarian-matched IoU over max(n_pred, n_true) entries; 1 when both are empty."""
    from evlf.eval.metrics import case_box_ious

    if not pred and not true:
        return 1.0
    ordered = [[min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]), max(p[1], p[3])] for p in pred]
    entries = case_box_ious(ordered, [list(t) for t in true])
    return float(sum(entries) / len(entries))


def grounding_reward(completions: Sequence[Any], truth_boxes: Sequence[str], **_: Any) -> list[float]:
    """Matched IoU of the answer's boxes with the true boxes (both in the model's convention)."""
    scores = []
    for c, raw in zip(completions, truth_boxes, strict=True):
        true = json.loads(raw) if isinstance(raw, str) else list(raw)
        answer = parse_answer(completion_text(c))
        if answer is None:
            scores.append(0.0)
            continue
        pred = [f.box for f in answer.findings if f.box is not None]
        try:
            scores.append(box_score(pred, true))
        except ValueError:
            scores.append(0.0)
    return scores


REWARDS = {"format": format_reward, "accuracy": accuracy_reward, "grounding": grounding_reward}

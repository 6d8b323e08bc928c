"""The text a trained model writes: `<think>reasoning</think><answer>{json}</answer>`, rendered in one place.

Training targets (evlf.training.examples) and the demo model's vision tower
(evlf.models.lite0_vision, which writes its detection as this text for the
decoder to transcribe) both come from here, so a model is taught exactly the
text its pipeline parses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

#: How each synthetic lesion type looks, in the words the reasoning uses.
LOOKS = {
    "nodule": "a small round well-defined focus",
    "mass": "a large irregular lobulated lesion",
    "cyst": "an oval lesion with a thin bright rim and a dark centre",
}


def region_words(cx: float, cy: float) -> str:
    """Coarse place of a point given as fractions of width and height, in words ("upper left", "centre", ...)."""
    row = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "middle"
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def think_text(label: str | None, regions: Sequence[str], lead: str = "") -> str:
    """Short reasoning: what the lesion looks like, where it is, and the conclusion (or that none is seen)."""
    if not regions:
        return f"{lead}No focal lesion is seen. Normal."
    looks = LOOKS.get(label or "", "a focal lesion")
    return f"{lead}There is {looks} in the {', '.join(regions)}. This fits {label}."


def unit_coordinate(value: float) -> str:
    """A 0-1 coordinate with exactly two decimals, capped at 0.99: a fixed number of digits per coordinate."""
    return f"{min(99, max(0, round(float(value) * 100))) / 100:.2f}"


def _number(value: float) -> str:
    return json.dumps(int(value) if float(value).is_integer() else value)


def answer_text(
    label: str | None,
    confidence: float,
    findings: Sequence[tuple[str, float, Sequence[float]]],
    think: str,
    unit_boxes: bool = True,
) -> str:
    """The whole reply for one diagnosis; `findings` are (label, confidence, box in the model's convention)."""
    payload = {"diagnosis": label or "unknown", "confidence": round(float(confidence), 2),
               "findings": [{"label": f, "confidence": round(float(c), 2), "box": f"@BOX{i}@"} for i, (f, c, _) in enumerate(findings)]}
    body = json.dumps(payload, separators=(",", ":"))
    for i, (_, _, box) in enumerate(findings):
        text = ",".join(unit_coordinate(v) if unit_boxes else _number(v) for v in box)
        body = body.replace(f'"@BOX{i}@"', f"[{text}]")
    return f"<think>{think}</think><answer>{body}</answer>"

"""The EVLF answer: what the model writes inside <answer>...</answer>.

One schema shared by prompts, constrained decoding, parsing and training, so a
model trained with evlf answers exactly what evlf parses. Boxes here are in the
model family's own convention; the ground node decodes them to original pixels.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NO_TAGS = "^[^<>]*$"


class AnswerFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    box: list[float] | None = Field(None, min_length=4, max_length=4)
    image: int = Field(0, ge=0)


class AnswerDifferential(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    probability: float = Field(ge=0.0, le=1.0)


class EvlfAnswer(BaseModel):
    """The structured answer. `answer` holds the reply to a VQA question."""

    model_config = ConfigDict(extra="forbid")

    diagnosis: str
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    differential: list[AnswerDifferential] = Field(default_factory=list)
    findings: list[AnswerFinding] = Field(default_factory=list)
    answer: str | None = None


class ParsedOutput(BaseModel):
    """A model reply split into its reasoning and its validated answer."""

    think: str = ""
    answer: EvlfAnswer
    raw: str


def answer_json_schema(labels: list[str] | None = None, max_findings: int = 8) -> dict[str, Any]:
    """JSON Schema for constrained decoding: closed objects, optional enum of labels.

    Closed objects (additionalProperties: false) keep grammar-constrained
    decoders from wandering into invented keys.
    """
    # no angle brackets in free text: a tag like </answer> inside a string would cut the reply for the parser
    label: dict[str, Any] = {"type": "string", "maxLength": 80, "pattern": NO_TAGS}
    if labels:
        label = {"type": "string", "enum": list(labels)}
    prob = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "diagnosis": label,
            "confidence": prob,
            "differential": {
                "type": "array",
                "maxItems": 5,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"label": label, "probability": prob},
                    "required": ["label", "probability"],
                },
            },
            "findings": {
                "type": "array",
                "maxItems": max_findings,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "label": label,
                        "confidence": prob,
                        "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                        "image": {"type": "integer", "minimum": 0, "maximum": 15},
                    },
                    "required": ["label", "confidence", "box"],
                },
            },
            "answer": {"anyOf": [{"type": "string", "maxLength": 400, "pattern": NO_TAGS}, {"type": "null"}]},
        },
        "required": ["diagnosis", "confidence", "findings"],
    }

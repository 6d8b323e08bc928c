"""Parse a model reply into reasoning and a validated EVLF answer.

The EVLF style is `<think>reasoning</think><answer>{json}</answer>`. Real
models also answer with JSON in a code fence, Qwen's grounding lists
(`[{"bbox_2d": [..], "label": ..}]`) or InternVL's `<ref>label</ref><box>[[..]]</box>`;
all of these are accepted. Boxes stay in the family's own convention: the
ground node decodes them with `BoxCodec`.

One bounded repair is offered through `repair_prompt`: the backend asks the
model once more with the parse error, then gives up and keeps the raw text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from evlf.core.answer import EvlfAnswer, ParsedOutput
from evlf.core.errors import ParseError

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S | re.I)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_REF_BOX = re.compile(r"<ref>(.*?)</ref>\s*<box>\s*(\[\s*\[.*?\]\s*\])\s*</box>", re.S)
_BOX_KEYS = ("box", "bbox_2d", "bbox", "box_2d")
_LABEL_KEYS = ("label", "name", "finding", "class")


def parse_output(text: str) -> ParsedOutput:
    """Split a reply into think + answer; ParseError (keeping `text`) when no valid answer is found."""
    think_match = _THINK.search(text)
    think = think_match.group(1).strip() if think_match else ""
    rest = text[think_match.end() :] if think_match else text
    answer_match = _ANSWER.search(rest)
    body = answer_match.group(1) if answer_match else rest
    data = _ref_boxes(body)  # first: its [[..]] boxes would pass for a JSON list
    if data is None:
        data = _find_json(body)
    if data is None:
        where = "<answer>" if answer_match else "the reply"
        raise ParseError(f"no JSON answer found in {where}", text)
    answer = _to_answer(data, text)
    return ParsedOutput(think=think, answer=answer, raw=text)


def repair_prompt(error: str) -> str:
    """The follow-up user turn of the single repair attempt."""
    return (
        f"Your previous reply could not be read: {error}. Reply again with exactly "
        "<think>brief reasoning</think><answer>{json}</answer>, the JSON holding diagnosis, "
        "confidence (0-1), differential and findings (label, confidence, box)."
    )


def _find_json(body: str) -> Any | None:
    candidates = [m.group(1) for m in _FENCE.finditer(body)] + [body]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        chunk = chunk.strip()
        try:
            return json.loads(chunk)
        except json.JSONDecodeError:
            pass
        for i, ch in enumerate(chunk):  # first decodable object or array inside prose
            if ch in "{[":
                try:
                    value, _ = decoder.raw_decode(chunk, i)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, (dict, list)):
                    return value
    return None


def _ref_boxes(body: str) -> list[dict[str, Any]] | None:
    findings = []
    for label, boxes in _REF_BOX.findall(body):
        try:
            coords = json.loads(boxes)
        except json.JSONDecodeError:
            continue
        for box in coords:
            findings.append({"label": label.strip(), "box": box})
    return findings or None


def _finding(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return item
    out = {k: v for k, v in item.items() if k not in _BOX_KEYS and k not in _LABEL_KEYS}
    for key in _LABEL_KEYS:
        if key in item:
            out["label"] = item[key]
            break
    for key in _BOX_KEYS:
        if key in item:
            out["box"] = item[key]
            break
    return out


def _to_answer(data: Any, raw: str) -> EvlfAnswer:
    if isinstance(data, list):  # a grounding list (Qwen bbox_2d, InternVL ref/box)
        findings = [_finding(item) for item in data]
        if not findings or not all(isinstance(f, dict) and "label" in f for f in findings):
            raise ParseError("a list answer must hold findings with labels", raw)
        data = {"diagnosis": findings[0]["label"], "findings": findings}
    if not isinstance(data, dict):
        raise ParseError(f"the answer is a JSON {type(data).__name__}, not an object", raw)
    data = dict(data)
    if isinstance(data.get("findings"), list):
        data["findings"] = [_finding(f) for f in data["findings"]]
    try:
        return EvlfAnswer.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise ParseError(f"invalid answer at {where}: {first['msg']}", raw) from None

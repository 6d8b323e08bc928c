"""EVLF output parsing: the EVLF style and what real models emit instead."""

from __future__ import annotations

import pytest

from evlf.core.errors import ParseError
from evlf.core.output import parse_output

EVLF = (
    "<think>Consolidation in the right lower lobe.</think>"
    '<answer>{"diagnosis": "pneumonia", "confidence": 0.8, '
    '"differential": [{"label": "atelectasis", "probability": 0.15}], '
    '"findings": [{"label": "consolidation", "confidence": 0.7, "box": [10, 20, 110, 220]}]}</answer>'
)


def test_evlf_style():
    parsed = parse_output(EVLF)
    assert parsed.think == "Consolidation in the right lower lobe."
    assert parsed.answer.diagnosis == "pneumonia"
    assert parsed.answer.differential[0].label == "atelectasis"
    assert parsed.answer.findings[0].box == [10, 20, 110, 220]
    assert parsed.raw == EVLF


def test_json_in_code_fence_with_prose():
    text = 'Here is my answer:\n```json\n{"diagnosis": "melanoma", "confidence": 0.6, "findings": []}\n```\nHope it helps.'
    parsed = parse_output(text)
    assert parsed.answer.diagnosis == "melanoma" and parsed.think == ""


def test_answer_tag_holding_a_fence():
    text = '<think>ok</think><answer>```json\n{"diagnosis": "normal"}\n```</answer>'
    assert parse_output(text).answer.diagnosis == "normal"


def test_qwen_bbox_2d_grounding_list():
    text = '```json\n[{"bbox_2d": [12, 30, 200, 180], "label": "nodule"}, {"bbox_2d": [1, 2, 3, 4], "label": "effusion"}]\n```'
    answer = parse_output(text).answer
    assert [f.label for f in answer.findings] == ["nodule", "effusion"]
    assert answer.findings[0].box == [12, 30, 200, 180]
    assert answer.diagnosis == "nodule"


def test_bbox_2d_inside_evlf_findings():
    text = '<answer>{"diagnosis": "x", "findings": [{"label": "mass", "confidence": 0.9, "bbox_2d": [1, 2, 3, 4]}]}</answer>'
    assert parse_output(text).answer.findings[0].box == [1, 2, 3, 4]


def test_internvl_ref_box():
    text = "<ref>lesion</ref><box>[[100, 200, 300, 400]]</box> and <ref>cyst</ref><box>[[1, 2, 3, 4], [5, 6, 7, 8]]</box>"
    answer = parse_output(text).answer
    assert [(f.label, f.box) for f in answer.findings] == [
        ("lesion", [100, 200, 300, 400]),
        ("cyst", [1, 2, 3, 4]),
        ("cyst", [5, 6, 7, 8]),
    ]


def test_unclosed_answer_tag_still_parses():
    assert parse_output('<think>a</think><answer>{"diagnosis": "y"}').answer.diagnosis == "y"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no json at all", "no JSON answer"),
        ("<think>t</think><answer>{not json}</answer>", "no JSON answer found in <answer>"),
        ('<answer>{"diagnosis": "x", "confidence": 7}</answer>', "confidence"),
        ('<answer>{"findings": []}</answer>', "diagnosis"),
        ('<answer>{"diagnosis": "x", "findings": [{"label": "a", "box": [1, 2, 3]}]}</answer>', "box"),
        ('<answer>{"diagnosis": "x", "colour": "red"}</answer>', "colour"),
        ("<answer>[1, 2]</answer>", "list answer"),
        ('<answer>"just a string"</answer>', "not an object"),
    ],
)
def test_bad_replies_raise_parse_error_keeping_raw_text(text, problem):
    with pytest.raises(ParseError) as info:
        parse_output(text)
    assert problem in info.value.problem
    assert info.value.raw == text

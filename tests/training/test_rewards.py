"""The GRPO rewards: each small, each in [0, 1], each scoring what the eval harness scores."""

import json

import pytest

from evlf.training.rewards import (
    accuracy_reward,
    box_score,
    completion_text,
    format_reward,
    grounding_reward,
    parse_answer,
)

GOOD = '<think>round focus upper left</think><answer>{"diagnosis":"nodule","confidence":0.9,"findings":[{"label":"nodule","confidence":0.9,"box":[0.1,0.1,0.3,0.3]}]}</answer>'
NORMAL = '<think>nothing</think><answer>{"diagnosis":"normal","confidence":0.8,"findings":[]}</answer>'


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_completion_text_accepts_strings_and_turns():
    assert completion_text(GOOD) == GOOD
    assert completion_text(conv(GOOD)) == GOOD
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"


def test_format_reward_grades_shape_and_schema():
    bad_json = "<think>x</think><answer>{not json}</answer>"
    extra_key = '<think>x</think><answer>{"diagnosis":"cyst","colour":"red"}</answer>'
    no_tags = '{"diagnosis":"cyst"}'
    trailing = GOOD + " and more"
    half = "<think>x</think> no answer"
    assert format_reward([conv(GOOD), conv(NORMAL), conv(bad_json), conv(extra_key), conv(no_tags), conv(trailing), conv(half)]) == [
        1.0, 1.0, 0.5, 0.5, 0.0, 0.5, 0.25,
    ]


def test_accuracy_reward_compares_the_diagnosis_case_insensitively():
    upper = GOOD.replace('"diagnosis":"nodule"', '"diagnosis":"Nodule"')
    assert accuracy_reward([conv(GOOD), conv(upper), conv(NORMAL), conv("junk")], truth_label=["nodule"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_box_score_matches_like_the_harness():
    assert box_score([], []) == 1.0
    assert box_score([[0, 0, 1, 1]], []) == 0.0  # a box on a normal image costs
    assert box_score([], [[0, 0, 1, 1]]) == 0.0
    assert box_score([[0, 0, 1, 1]], [[0, 0, 1, 1]]) == pytest.approx(1.0)
    # two true boxes, predicted in the other order: Hungarian matching pairs them correctly
    assert box_score([[5, 5, 6, 6], [0, 0, 1, 1]], [[0, 0, 1, 1], [5, 5, 6, 6]]) == pytest.approx(1.0)
    # half overlap: IoU 1/3; a surplus box halves the mean
    assert box_score([[0, 0, 2, 1]], [[1, 0, 3, 1]]) == pytest.approx(1 / 3)
    assert box_score([[0, 0, 1, 1], [7, 7, 8, 8]], [[0, 0, 1, 1]]) == pytest.approx(0.5)
    # corners given out of order are read as the box they span
    assert box_score([[1, 1, 0, 0]], [[0, 0, 1, 1]]) == pytest.approx(1.0)


def test_grounding_reward_uses_truth_in_the_model_convention():
    truth = json.dumps([[0.1, 0.1, 0.3, 0.3]])
    shifted = GOOD.replace("[0.1,0.1,0.3,0.3]", "[0.2,0.1,0.4,0.3]")
    scores = grounding_reward([conv(GOOD), conv(shifted), conv(NORMAL), conv("junk")], truth_boxes=[truth] * 4)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(1 / 3)
    assert scores[2] == 0.0 and scores[3] == 0.0
    assert grounding_reward([conv(NORMAL)], truth_boxes=["[]"]) == [1.0]


def test_parse_answer_returns_the_validated_answer():
    answer = parse_answer(GOOD)
    assert answer is not None and answer.findings[0].box == [0.1, 0.1, 0.3, 0.3]
    assert parse_answer("<answer>{}</answer>") is None

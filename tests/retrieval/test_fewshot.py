"""Few-shot selection (relevance, MMR diversity, label balance, budgets) and exemplars as chat turns in the EVLF format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evlf.core.errors import InputError
from evlf.core.geometry import BoxConvention
from evlf.core.imaging import load_image
from evlf.core.output import parse_output
from evlf.retrieval import Budget, Case, case_answer_text, exemplar_turns, select_exemplars

from .conftest import write_png

QUERY = (200, 50, 50)
GROUPS = {
    # label: colours (near the query -> far from it)
    "a": [(201, 50, 50), (199, 51, 50), (200, 49, 51), (202, 50, 49)],
    "b": [(175, 75, 60), (170, 80, 65)],
    "c": [(30, 30, 200)],
}


@pytest.fixture
def fewshot_store(store, tmp_path):
    cases = []
    for label, colours in GROUPS.items():
        for i, colour in enumerate(colours):
            path = write_png(tmp_path / f"{label}{i}.png", colour, seed=i)
            cases.append(Case(case_id=f"{label}{i}", image_path=str(path), modality="CT", labels=[label], boxes=[[2, 3, 20, 25]], licence="CC0", source="test"))
    cases.append(Case(case_id="unlabelled", image_path=str(write_png(tmp_path / "u.png", QUERY, seed=9)), modality="CT"))
    query_path = write_png(tmp_path / "query.png", QUERY, seed=42)
    cases.append(Case(case_id="self", image_path=str(query_path), modality="CT", labels=["a"]))
    store.add(cases)
    return store, load_image(query_path)


def ids(selected):
    return [s.case.case_id for s in selected]


def test_relevance_first_and_query_never_its_own_example(fewshot_store):
    store, query = fewshot_store
    chosen = select_exemplars(store, query, k=1)
    assert ids(chosen)[0].startswith("a")
    assert "self" not in ids(select_exemplars(store, query, k=5, budget=Budget(max_images=5, max_tokens=10_000)))


def test_unlabelled_cases_are_not_examples(fewshot_store):
    store, query = fewshot_store
    chosen = select_exemplars(store, query, k=6, budget=Budget(max_images=6, max_tokens=10_000))
    assert "unlabelled" not in ids(chosen) and len(chosen) == 6


def test_label_balance_and_diversity(fewshot_store):
    store, query = fewshot_store
    plain = select_exemplars(store, query, k=2, diversity=0.0, balance_labels=False)
    assert [s.case.labels[0] for s in plain] == ["a", "a"]
    balanced = select_exemplars(store, query, k=2, diversity=0.0, balance_labels=True)
    assert [s.case.labels[0] for s in balanced] == ["a", "b"]
    novel = select_exemplars(store, query, k=2, diversity=0.9, balance_labels=False)
    assert novel[1].case.labels[0] != "a"  # MMR: the second pick avoids a near-copy of the first
    sims = [s.similarity for s in plain]
    assert all(0 < s <= 1.0001 for s in sims)


def test_budgets(fewshot_store):
    store, query = fewshot_store
    assert len(select_exemplars(store, query, k=3, budget=Budget(max_images=1))) == 1
    assert len(select_exemplars(store, query, k=3, budget=Budget(max_images=3, tokens_per_image=256, max_tokens=450))) == 1
    assert select_exemplars(store, query, k=3, budget=Budget(max_images=3, max_tokens=100)) == []


def test_exemplar_turns_in_evlf_format(fewshot_store):
    store, query = fewshot_store
    chosen = select_exemplars(store, query, k=2)
    shot = exemplar_turns(chosen, BoxConvention.UNIT)
    assert [t.role for t in shot.turns] == ["user", "assistant", "user", "assistant"]
    for user, assistant, sel, ex in zip(shot.turns[::2], shot.turns[1::2], chosen, shot.exemplars, strict=True):
        (img,) = user.images
        assert img.dtype == np.uint8 and img.shape == (32, 40, 3)
        assert "CT" in user.text
        parsed = parse_output(assistant.text)
        assert parsed.answer.diagnosis == sel.case.labels[0]
        assert parsed.answer.findings[0].box == pytest.approx([2 / 40, 3 / 32, 20 / 40, 25 / 32], abs=1e-3)
        assert ex.case_id == sel.case.case_id and ex.similarity == sel.similarity and ex.licence == "CC0"
        assert ex.answer == assistant.text


def test_answer_text_sources(tmp_path):
    base = dict(case_id="x", image_path=str(tmp_path / "x.png"), modality="MR")
    given = "<think>t</think><answer>{\"diagnosis\": \"d\", \"confidence\": 0.9, \"findings\": []}</answer>"
    assert case_answer_text(Case(**base, answer=given)) == given
    wrapped = case_answer_text(Case(**base, answer='{"diagnosis": "cyst", "confidence": 0.8, "findings": []}'))
    assert parse_output(wrapped).answer.diagnosis == "cyst"
    vqa = parse_output(case_answer_text(Case(**base, labels=["normal anatomy"], answer="yes")))
    assert vqa.answer.answer == "yes" and vqa.answer.diagnosis == "normal anatomy"
    with pytest.raises(InputError, match="neither labels nor an answer"):
        case_answer_text(Case(**base))


def test_exemplar_with_missing_image_is_a_clear_error(fewshot_store):
    store, query = fewshot_store
    chosen = select_exemplars(store, query, k=1)
    Path(chosen[0].case.image_path).unlink()
    with pytest.raises(InputError, match=Path(chosen[0].case.image_path).name):
        exemplar_turns(chosen)

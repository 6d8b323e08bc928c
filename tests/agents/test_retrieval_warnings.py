"""Retrieval says what it did: no store, an unlabelled store, no case of the study's modality; exemplars never cross modality unasked."""

from __future__ import annotations

import pytest

from evlf.agents.pipeline import Pipeline
from evlf.core.types import Study
from evlf.retrieval import Case, CaseStore, default_embedder


@pytest.fixture
def other_modalities(images, tmp_path):
    """A store holding a labelled CT and a labelled fundus case, and no slide."""
    root = tmp_path / "store"
    with CaseStore.create(root, default_embedder()) as store:
        store.add(
            [
                Case(case_id="ct", image_path=str(images["ct"]), modality="CT", specialty="radiology", labels=["mass"]),
                Case(case_id="fundus", image_path=str(images["fundus"]), modality="fundus", specialty="ophthalmology", labels=["glaucoma"]),
            ]
        )
    return root


def slide(images, **metadata) -> Study:
    return Study.from_paths([images["ihc"]], id="slide-1", specialty="pathology", metadata=metadata)


def test_a_slide_gets_no_ct_or_fundus_exemplar_and_the_report_says_so(images, scripted, other_modalities):
    pipe = Pipeline("rag", backend=scripted(), case_store=str(other_modalities))
    report = pipe.run(slide(images, modality="pathology"))
    assert report.exemplars == []
    assert any("pathology: no exemplars: no labelled SM case" in w for w in report.warnings)
    unknown = pipe.run(slide(images))
    assert unknown.exemplars == [] and any("modality is unknown" in w for w in unknown.warnings)


def test_crossing_modality_is_the_users_choice(images, scripted, other_modalities):
    pipe = Pipeline("rag", backend=scripted(), case_store=str(other_modalities), cross_modality_exemplars=True)
    report = pipe.run(slide(images, modality="pathology"))
    assert sorted(e.case_id for e in report.exemplars) == ["ct", "fundus"]
    assert not any("no exemplars" in w for w in report.warnings)


def test_an_unlabelled_store_is_a_warning_not_silence(images, scripted, tmp_path):
    root = tmp_path / "unlabelled"
    with CaseStore.create(root, default_embedder()) as store:
        store.add([Case(case_id="starter-like", image_path=str(images["chest"]), modality="CR", specialty="radiology")])
    report = Pipeline("rag", backend=scripted(), case_store=str(root)).run(Study.from_paths([images["chest"]], id="chest-1"))
    assert report.exemplars == []
    assert any("none with labels or an answer" in w and "evlf cases add" in w for w in report.warnings)


def test_no_store_points_at_labelled_cases_not_the_starter_bank(images, scripted):
    report = Pipeline("rag", backend=scripted()).run(Study.from_paths([images["chest"]], id="chest-1"))
    skipped = [w for w in report.warnings if "retrieval skipped" in w]
    assert skipped and "evlf cases add" in skipped[0] and "starter" not in skipped[0]

"""Exemplars stay within the study's modality unless allowed, and an empty choice says why."""

from __future__ import annotations

from evlf.core.imaging import load_image
from evlf.retrieval import Case
from evlf.retrieval.choice import choose_exemplars, modality_family

from .conftest import write_png


def add(store, tmp_path, case_id, colour, **fields):
    path = write_png(tmp_path / f"{case_id}.png", colour, seed=len(case_id))
    store.add([Case(case_id=case_id, image_path=str(path), **fields)])


def query(tmp_path):
    return load_image(write_png(tmp_path / "query.png", (180, 90, 160), seed=7))


def ids(choice):
    return [s.case.case_id for s in choice.selected]


def test_a_slide_gets_no_ct_or_fundus_case_and_the_report_is_told(store, tmp_path):
    add(store, tmp_path, "ct", (180, 90, 160), modality="CT", specialty="radiology", labels=["mass"])
    add(store, tmp_path, "fundus", (175, 95, 150), modality="fundus", specialty="ophthalmology", labels=["glaucoma"])
    choice = choose_exemplars(store, query(tmp_path), 2, specialty="pathology", modalities={"SM"})
    assert choice.selected == []
    assert "no labelled SM case" in choice.warning and "cross_modality_exemplars" in choice.warning
    allowed = choose_exemplars(store, query(tmp_path), 2, specialty="pathology", modalities={"SM"}, cross_modality=True)
    assert sorted(ids(allowed)) == ["ct", "fundus"] and allowed.warning is None


def test_the_same_modality_spelled_otherwise_is_used_across_specialties(store, tmp_path):
    add(store, tmp_path, "retina", (180, 90, 160), modality="fundus", labels=["drusen"])  # no specialty recorded
    add(store, tmp_path, "mr", (181, 90, 160), modality="MR", specialty="ophthalmology", labels=["optic neuritis"])
    add(store, tmp_path, "radiograph", (180, 91, 160), modality="CR", specialty="radiology", labels=["nodule"])
    assert ids(choose_exemplars(store, query(tmp_path), 2, specialty="ophthalmology", modalities={"OP"})) == ["retina"]
    assert ids(choose_exemplars(store, query(tmp_path), 2, specialty="pulmonology", modalities={"DX"})) == ["radiograph"]
    assert modality_family("cr") == modality_family("x-ray") == "DX"


def test_an_unknown_modality_keeps_to_the_specialty(store, tmp_path):
    add(store, tmp_path, "ct", (180, 90, 160), modality="CT", specialty="radiology", labels=["mass"])
    add(store, tmp_path, "slide", (20, 200, 20), modality="SM", specialty="pathology", labels=["adenocarcinoma"])
    assert ids(choose_exemplars(store, query(tmp_path), 2, specialty="pathology", modalities=set())) == ["slide"]
    none = choose_exemplars(store, query(tmp_path), 2, specialty="dermatology", modalities=set())
    assert none.selected == [] and "no labelled dermatology case" in none.warning and "modality is unknown" in none.warning


def test_an_unlabelled_store_is_reported_with_what_to_do(store, tmp_path):
    add(store, tmp_path, "starter-like", (180, 90, 160), modality="SM", specialty="pathology")
    choice = choose_exemplars(store, query(tmp_path), 2, specialty="pathology", modalities={"SM"})
    assert choice.selected == []
    assert "1 cases, none with labels" in choice.warning and "evlf cases add" in choice.warning

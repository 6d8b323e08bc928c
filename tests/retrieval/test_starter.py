"""The starter bank with the real encoder: honest metadata, and same-modality images found first for images not in the bank."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evlf.core.imaging import load_image
from evlf.retrieval import CaseStore, select_exemplars
from evlf.retrieval.starter import STARTER

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


def _pkg(module: str) -> Path:
    return Path(next(iter(importlib.util.find_spec(module).submodule_search_locations)))


def test_metadata_is_honest(starter_store):
    with CaseStore.open(starter_store) as s:
        cases = s.cases()
    assert len(cases) == len(STARTER)
    assert all(c.labels == [] and c.answer is None and c.boxes == [] for c in cases)  # no invented diagnoses
    assert all(c.source and c.licence and c.modality and c.specialty for c in cases)
    assert all(Path(c.image_path).is_file() and Path(c.image_path).parent == starter_store / "images" for c in cases)
    assert {c.modality for c in cases} >= {"CT", "MR", "CR", "US", "fundus", "pathology"}


# Queries are real images that are NOT in the bank (another scan, another frame, another tile),
# except fundus: only two fundus images ship, so that query is the bank's retina mirrored and cropped.
QUERIES = [
    ("CT", "data_store", "data/bad_sequence.dcm", None),  # a different CT (neck)
    ("MR", "data_store", "data/emri_small.dcm", 0),  # another slice of an MR series
    ("US", "data_store", "data/JPGLosslessP14SV1_1s_1f_8b.dcm", None),  # a different ultrasound image
    ("pathology", "pydicom.data", "test_files/SC_jpeg_no_color_transform_2.dcm", None),
]


@pytest.mark.parametrize(("modality", "package", "relpath", "frame"), QUERIES)
def test_same_modality_first(starter_store, modality, package, relpath, frame):
    query = load_image(_pkg(package) / relpath, frame=frame)
    with CaseStore.open(starter_store) as s:
        hits = s.search(query, k=2)
    assert hits[0][0].modality == modality, [(c.case_id, round(sim, 3)) for c, sim in hits]


def test_fundus_finds_fundus(starter_store):
    image = load_image(_pkg("skimage.data") / "retina.jpg")
    rgb = image.rgb[:, ::-1][40:-40, 40:-40].copy()
    query = image.model_copy(update={"rgb": rgb, "pixels": rgb, "sha256": "f" * 64})
    with CaseStore.open(starter_store) as s:
        hits = s.search(query, k=3)
        assert hits[0][0].modality == "fundus"
        filtered = s.search(query, k=3, modality="pathology")
        assert {c.modality for c, _ in filtered} == {"pathology"}
        # starter cases carry no labels or answers, so they are never shown as worked examples
        assert select_exemplars(s, query, k=3) == []

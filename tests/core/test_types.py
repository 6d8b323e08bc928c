"""Domain types: validation at the boundary, mask RLE, the versioned Report schema."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from evlf.core.types import (
    SCHEMA_VERSION,
    Box,
    Finding,
    Mask,
    Provenance,
    ReasoningStep,
    Report,
    Study,
    report_json_schema,
)


def test_box_rejects_inverted_corners():
    with pytest.raises(ValidationError, match="out of order"):
        Box(x0=10, y0=0, x1=5, y1=5)


@given(arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_mask_rle_round_trip(mask):
    rle = Mask.from_array(mask)
    assert np.array_equal(rle.to_array(), mask)
    assert rle.area == int(mask.sum())


def test_mask_rle_rejects_wrong_total():
    with pytest.raises(ValidationError):
        Mask(height=2, width=2, counts=[1, 1])


def test_study_from_paths_has_stable_id(tmp_path):
    a = Study.from_paths([tmp_path / "a.png"])
    b = Study.from_paths([tmp_path / "a.png"])
    assert a.id == b.id and a.id.startswith("study-")
    with pytest.raises(ValidationError):
        Study(id="x", images=[])


def _provenance():
    return Provenance(evlf_version="0", model_id="m", backend="tiny", trained=False)


def test_report_rejects_citations_of_missing_findings():
    with pytest.raises(ValidationError, match="cites findings"):
        Report(
            study_id="s",
            findings=[Finding(label="nodule")],
            reasoning=[ReasoningStep(text="see", cites=[1])],
            provenance=_provenance(),
        )


def test_report_json_round_trip():
    report = Report(
        study_id="s",
        findings=[Finding(label="nodule", boxes=[Box(x0=1, y0=2, x1=3, y1=4)])],
        reasoning=[ReasoningStep(text="a round opacity", cites=[0])],
        provenance=_provenance(),
    )
    again = Report.model_validate_json(report.model_dump_json())
    assert again == report


def test_schema_carries_its_version():
    schema = report_json_schema()
    assert schema["version"] == SCHEMA_VERSION
    assert SCHEMA_VERSION in schema["$id"]
    assert "provenance" in schema["required"]

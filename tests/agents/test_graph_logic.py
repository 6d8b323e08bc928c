"""Graph logic with a scripted model: grounding, refinement, the verification loop, aggregation, review."""

from __future__ import annotations

import pytest

from evlf.agents.pipeline import Pipeline, ReviewPending
from evlf.core.types import Report, Study



def chest(images) -> Study:
    return Study.from_paths([images["chest"]], id="chest-1")


def test_direct_grounds_unit_boxes_in_original_pixels(images, scripted):
    backend = scripted()
    report = Pipeline("direct", backend=backend).run(chest(images))
    assert report.specialties == ["pulmonology"]
    assert report.diagnosis.primary == "pulmonary nodule" and report.diagnosis.code
    (finding,) = report.findings
    box = finding.boxes[0]
    # RG1_UNCR is 1841 x 1955: the unit box [0.25, 0.25, 0.5, 0.5] maps to these original pixels
    assert box.as_list() == pytest.approx([460.25, 488.75, 920.5, 977.5])
    assert finding.status == "unverified" and finding.refined_box is None  # direct does not refine
    assert report.reasoning and report.reasoning[0].cites == [0]
    assert report.provenance.model_calls == 1 and report.provenance.graph == "direct"
    assert not report.provenance.trained and "untrained" in report.warnings[0]
    Report.model_validate_json(report.model_dump_json())


def test_full_refines_every_box_and_records_agreement(images, scripted):
    report = Pipeline("full", backend=scripted(), verify_rounds=0).run(chest(images))
    (finding,) = report.findings
    assert finding.status in {"verified", "adjusted", "unverified"}
    assert finding.refined_box is not None and finding.agreement is not None
    assert {"refine", "verify", "reason", "ground"} <= report.provenance.timings_ms.keys()


def test_verification_loop_sends_a_bad_answer_back_once(images, scripted, nodule_reply):
    backend = scripted(["I think it is fine.", nodule_reply])
    report = Pipeline("full", backend=backend, verify_rounds=1).run(chest(images))
    assert backend.calls == 2
    assert report.provenance.model_calls == 2
    assert report.diagnosis.primary == "pulmonary nodule"
    retry_prompt = backend.batches[1][0].turns[-1].text
    assert "did not parse" in retry_prompt  # the critique reached the second round


def test_verification_gives_up_after_its_rounds_and_says_so(images, scripted):
    backend = scripted(["not an answer"])
    report = Pipeline("full", backend=backend, verify_rounds=1).run(chest(images))
    assert backend.calls == 2
    assert report.diagnosis is None and report.findings == []
    assert any("could not be parsed" in w for w in report.warnings)


def test_box_outside_the_image_is_clipped_and_a_degenerate_one_flagged(images, scripted, nodule_reply):
    reply = nodule_reply.replace("[0.25, 0.25, 0.5, 0.5]", "[1.5, 1.5, 2.0, 2.0]")
    report = Pipeline("direct", backend=scripted([reply])).run(chest(images))
    (finding,) = report.findings
    assert finding.boxes == [] and finding.status == "ungrounded" and "box dropped" in finding.note
    assert any("box dropped" in w for w in report.warnings)


def test_panel_reconciles_several_specialists(images, scripted):
    backend = scripted()
    report = Pipeline("panel", backend=backend, panel_size=2).run(chest(images))
    assert report.specialties == ["pulmonology", "radiology"]
    assert backend.calls == 2
    assert len(report.findings) == 1 and "also found by" in (report.findings[0].note or "")
    assert report.diagnosis.primary == "pulmonary nodule"


def test_modality_gate_refuses_unknown_images(tmp_path, scripted):
    import numpy as np
    from PIL import Image

    from evlf.core.routing import RoutingRefused

    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    with pytest.raises(RoutingRefused, match="no specialty accepts"):
        Pipeline("direct", backend=scripted()).run(Study.from_paths([path]))


def test_review_pauses_then_approve_or_edit(images, tmp_path, scripted):
    db = tmp_path / "runs.sqlite"
    pipe = Pipeline("direct", backend=scripted(), checkpoint=db, review=True)
    with pytest.raises(ReviewPending) as pending:
        pipe.run(chest(images))
    draft = pending.value.draft
    assert draft.diagnosis.primary == "pulmonary nodule"
    edited = draft.model_copy(update={"answer": "edited by a radiologist"}).model_dump(mode="json")
    report = pipe.run(chest(images), reviewer=lambda d: {"action": "edit", "report": edited})
    assert report.answer == "edited by a radiologist"
    assert "edited by a person after review" in report.warnings
    # a finished run is not repeated: the stored report comes back
    again = Pipeline("direct", backend=scripted(["x"]), checkpoint=db, review=True).run(chest(images))
    assert again.answer == "edited by a radiologist"


def test_run_many_batches_model_calls_across_studies(images, scripted):
    backend = scripted()
    studies = [Study.from_paths([images["chest"]], id=f"s{i}") for i in range(6)]
    # a long window: the batch is sent when all six studies wait for the model, not when a timer fires
    reports = Pipeline("direct", backend=backend, batch_window_s=30.0).run_many(studies, concurrency=6)
    assert [r.study_id for r in reports] == [s.id for s in studies]
    assert backend.calls == 6
    assert [len(b) for b in backend.batches] == [6]  # the six studies' calls met in one batch


def test_label_enum_only_with_closed_labels(images, scripted):
    for closed in (False, True):
        backend = scripted()
        Pipeline("direct", backend=backend, closed_labels=closed).run(chest(images))
        label_schema = backend.batches[0][0].json_schema["properties"]["diagnosis"]
        assert ("enum" in label_schema) is closed
        if closed:
            assert "pulmonary nodule" in label_schema["enum"]


def test_answer_schema_keeps_tags_out_of_free_text():
    import re

    from evlf.core.answer import answer_json_schema

    schema = answer_json_schema()
    pattern = schema["properties"]["diagnosis"]["pattern"]
    assert re.fullmatch(pattern, "pulmonary nodule")
    assert not re.fullmatch(pattern, "mass</answer><answer>cyst")  # a tag in a string would cut the reply

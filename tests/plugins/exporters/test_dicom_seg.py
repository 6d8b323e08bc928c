"""dicom-seg on real DICOM files: one segment per finding, masks and codes intact on read-back, dciodvfy clean."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from evlf.core.errors import InputError
from evlf.plugins.exporters.dicom_common import final_boxes

FRAMES = {"multiframe": 1, "cine": 4}
KINDS = ["ct", "mr", "cr", "multiframe"]


def expected_mask(finding, height: int, width: int) -> np.ndarray:
    if finding.mask is not None:
        return finding.mask.to_array()
    mask = np.zeros((height, width), dtype=bool)
    for box in final_boxes(finding):
        mask[int(box.y0) : int(np.ceil(box.y1)), int(box.x0) : int(np.ceil(box.x1))] = True
    return mask


@pytest.mark.parametrize("kind", KINDS)
def test_seg_reads_back_with_one_segment_per_finding(kind: str, tmp_path: Path, source, report_on) -> None:
    src = source(kind)
    report = report_on(src, frame=FRAMES.get(kind), boxless=True)
    out = tmp_path / "seg.dcm"
    report.export("dicom-seg", out)
    original = pydicom.dcmread(src, stop_before_pixels=True)
    seg = hd.seg.segread(out)
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage and seg.StudyInstanceUID == original.StudyInstanceUID
    drawn = [f for f in report.findings if f.mask is not None or final_boxes(f)]
    assert seg.number_of_segments == len(drawn) == 2  # the boxless finding has nothing to segment
    frame = FRAMES.get(kind)
    for number, finding in enumerate(drawn, start=1):
        description = seg.get_segment_description(number)
        assert description.segment_label.startswith(finding.label)
        assert (description.segmented_property_type.value, description.segmented_property_type.scheme_designator) == (finding.code, "I10")
        assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        assert description.algorithm_identification[0].AlgorithmName == report.provenance.model_id
        if frame is None:
            pixels = seg.get_pixels_by_source_instance([original.SOPInstanceUID], segment_numbers=[number], combine_segments=False)
        else:
            pixels = seg.get_pixels_by_source_frame(original.SOPInstanceUID, [frame + 1], segment_numbers=[number])
        assert np.array_equal(pixels[0, :, :, 0].astype(bool), expected_mask(finding, report.images[0].height, report.images[0].width))


def test_seg_segments_track_the_same_findings_as_the_sr(tmp_path: Path, source, report_on) -> None:
    report = report_on(source("ct"))
    report.export("dicom-seg", tmp_path / "seg.dcm")
    report.export("dicom-sr", tmp_path / "sr.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    groups = hd.sr.srread(tmp_path / "sr.dcm").content.get_planar_roi_measurement_groups()
    assert [seg.get_segment_description(n).tracking_uid for n in (1, 2)] == [g.tracking_uid for g in groups]


@pytest.mark.parametrize("kind", KINDS)
def test_seg_passes_dciodvfy(kind: str, tmp_path: Path, source, report_on, dciodvfy) -> None:
    out = tmp_path / "seg.dcm"
    report_on(source(kind), frame=FRAMES.get(kind), boxless=True).export("dicom-seg", out)
    assert dciodvfy(out) == []


def test_seg_refuses_a_cine_without_plane_positions(tmp_path: Path, source, report_on) -> None:
    with pytest.raises(InputError, match="no per-frame plane positions"):
        report_on(source("cine"), frame=4).export("dicom-seg", tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_seg_refuses_a_report_with_nothing_to_segment(tmp_path: Path, source, report_on) -> None:
    report = report_on(source("ct"), boxless=True)
    report = report.model_copy(update={"findings": report.findings[2:], "reasoning": []})
    with pytest.raises(InputError, match="nothing to segment"):
        report.export("dicom-seg")


def test_seg_refuses_a_non_dicom_source(png_source: Path, report_on) -> None:
    with pytest.raises(InputError, match="needs DICOM input"):
        report_on(png_source).export("dicom-seg")


@pytest.mark.parametrize("kind", ["ct", "multiframe"])
def test_sr_rois_can_reference_the_seg_segments(kind: str, tmp_path: Path, source, report_on, dciodvfy) -> None:
    report = report_on(source(kind), frame=FRAMES.get(kind), boxless=True)
    seg_path, sr_path = tmp_path / "seg.dcm", tmp_path / "sr.dcm"
    report.export("dicom-seg", seg_path)
    report.export("dicom-sr", sr_path, settings={"segmentation": str(seg_path)})
    seg = hd.seg.segread(seg_path)
    groups = hd.sr.srread(sr_path).content.get_planar_roi_measurement_groups()
    assert [g.reference_type.value for g in groups] == ["121214", "121214"]  # DCM "Referenced Segmentation Frame"
    for number, group in enumerate(groups, start=1):
        assert group.referenced_segmentation_frame.referenced_sop_instance_uid == seg.SOPInstanceUID
        ref = group.referenced_segmentation_frame
        (frame,) = ref.referenced_frame_numbers
        item = seg.PerFrameFunctionalGroupsSequence[int(frame) - 1]
        assert item.SegmentIdentificationSequence[0].ReferencedSegmentNumber == number
        source_ref = ref.source_image_for_segmentation.ReferencedSOPSequence[0]
        assert source_ref.get("ReferencedFrameNumber") == (FRAMES[kind] + 1 if kind in FRAMES else None)
        assert group.tracking_uid == seg.get_segment_description(number).tracking_uid
    assert len(hd.sr.srread(sr_path).content.get_image_measurement_groups()) == 1  # the boxless finding
    assert dciodvfy(sr_path) == []

"""`dicom-sr`: the report as a Comprehensive 3D SR holding a TID 1500 Measurement Report (highdicom).

The device observer names the model (name, weights hash as serial number);
each boxed finding is a TID 1410 planar ROI group whose region is the box as a
closed polyline on the source instance (and frame); a finding without a box is
a TID 1501 group (codes and evaluations, no region). The diagnosis and the
reasoning are text items among the report's qualitative evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.errors import InputError
from evlf.core.exporter import Exporter, ExportOptions
from evlf.core.hookspecs import hookimpl
from evlf.core.types import Box, Finding, Report
from evlf.plugins.exporters.deidentify import deidentify_bytes
from evlf.plugins.exporters.dicom_common import (
    EVLF_SCHEME,
    Source,
    algorithm,
    clean,
    coded,
    device_uid,
    final_boxes,
    finding_type,
    load_sources,
    procedure,
    require_highdicom,
    series_kwargs,
    to_bytes,
    tracking_id,
    tracking_uid,
)

NAME = "dicom-sr"
#: Private concept names and values (scheme 99EVLF) for what DICOM has no code for; see docs/clinical-outputs.md.
VERIFICATION = ("VERIFICATION", "Verification status of the model's box")
STATUS_MEANINGS = {
    "verified": "Box verified by the refiner",
    "adjusted": "Box adjusted by the refiner",
    "unverified": "Box not verified",
    "ungrounded": "No box",
}
CONFIDENCE = ("CONFIDENCE", "Model confidence")
QUALITATIVE = ("C0034375", "Qualitative Evaluations")
NO_FINDINGS = ("NO-FINDINGS", "The model reported no finding")


def export_sr(report: Report, options: ExportOptions) -> bytes:
    hd = require_highdicom(NAME)
    sources = load_sources(report, options, NAME)
    segmentation = read_segmentation(hd, options.settings.get("segmentation"))
    try:
        content = build_sr(hd, report, sources, segmentation)
    except ValueError as exc:
        raise InputError(NAME, f"highdicom cannot write this report as TID 1500 ({' '.join(str(exc).split())})") from None
    return deidentify_bytes(content) if options.deidentify else content


def read_segmentation(hd: Any, path: str | None) -> Any:
    """The dicom-seg file of the same report, whose segments the ROIs then reference (settings {"segmentation": PATH})."""
    if not path:
        return None
    try:
        return hd.seg.segread(path)
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(path, f"{NAME}: cannot read the segmentation to reference ({' '.join(str(exc).split())})") from None


def build_sr(hd: Any, report: Report, sources: list[Source], segmentation: Any = None) -> bytes:
    described = [] if segmentation is None else [segmentation.get_segment_description(k) for k in segmentation.segment_numbers]
    segments = {d.tracking_uid: d.segment_number for d in described}
    groups = []
    for n, finding in enumerate(report.findings):
        segment = segments.get(tracking_uid(report, n, finding))
        if segment is not None:
            groups.append(segment_group(hd, report, finding, n, segmentation, segment, sources))
        else:
            groups += finding_groups(hd, report, finding, n, sources)
    if not groups:  # TID 1500 needs a measurement group: say plainly that the model reported none
        groups = [no_findings(hd, report)]
    p = report.provenance
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(report),
        name=clean(p.model_id)[:64],
        manufacturer_name="evlf",
        model_name=clean(p.model_family or p.model_id)[:64],
        serial_number=(p.weights_sha256 or "unknown")[:64],
    )
    observer = hd.sr.ObserverContext(observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"), observer_identifying_attributes=device)
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure(sources),
        imaging_measurements=groups,
    )
    evaluations = text_items(hd, report)
    if evaluations:
        content[0].ContentSequence.append(evaluations)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[s.dataset for s in sources] + ([segmentation] if segments else []),
        content=content[0],
        **series_kwargs("evlf AI result (not for clinical use)"),
        is_complete=False,
        is_final=False,
        is_verified=False,
    )
    return to_bytes(sr)


def group_content(hd: Any, report: Report, finding: Finding, n: int) -> dict[str, Any]:
    """What every group of a finding says: tracking, finding type, algorithm, confidence, verification status."""
    return {
        "tracking_identifier": hd.sr.TrackingIdentifier(uid=tracking_uid(report, n, finding), identifier=tracking_id(n, finding)),
        "finding_type": finding_type(finding),
        "algorithm_id": algorithm_id(hd, report),
        "measurements": [confidence(hd, report, finding)],
        "qualitative_evaluations": [verification(hd, finding)],
    }


def segment_group(hd: Any, report: Report, finding: Finding, n: int, segmentation: Any, segment: int, sources: list[Source]) -> Any:
    """A TID 1410 group whose ROI is the finding's segment in the SEG (TID 1500 allows a segment instead of a region)."""
    reference = hd.sr.ReferencedSegmentationFrame.from_segmentation(segmentation, segment_number=segment)
    # highdicom 0.28 writes the SEG frame number beside the segment number (invalid together) and copies the SEG's
    # frame number into the source image reference; the source's own frame (or none for single-frame) is right.
    frames = {str(s.dataset.SOPInstanceUID): s.frame_number for s in sources}
    for item in reference:
        for ref in item.ReferencedSOPSequence:
            if ref.ReferencedSOPInstanceUID == segmentation.SOPInstanceUID:
                if "ReferencedFrameNumber" in ref and "ReferencedSegmentNumber" in ref:
                    del ref.ReferencedSegmentNumber
            elif ref.ReferencedSOPInstanceUID in frames:
                if frames[ref.ReferencedSOPInstanceUID] is None:
                    ref.pop("ReferencedFrameNumber", None)
                else:
                    ref.ReferencedFrameNumber = frames[ref.ReferencedSOPInstanceUID]
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_segment=reference, **group_content(hd, report, finding, n))


def finding_groups(hd: Any, report: Report, finding: Finding, n: int, sources: list[Source]) -> list[Any]:
    """One TID 1410 group per box of the finding (one TID 1501 group when it has none), sharing a tracking UID."""
    common = group_content(hd, report, finding, n)
    boxes = final_boxes(finding)
    if not boxes:
        return [hd.sr.MeasurementsAndQualitativeEvaluations(**common)]
    return [hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region(hd, box, sources), **common) for box in boxes]


def no_findings(hd: Any, report: Report) -> Any:
    from pydicom.uid import generate_uid

    uid = generate_uid(entropy_srcs=[report.study_id, report.provenance.created_at.isoformat(), "no findings"])
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier="no findings"),
        finding_type=coded(NO_FINDINGS[0], EVLF_SCHEME, NO_FINDINGS[1]),
    )


def region(hd: Any, box: Box, sources: list[Source]) -> Any:
    """The box as a closed polyline in the source's pixel coordinates, clipped to the image."""
    import numpy as np

    if box.image_index >= len(sources):
        raise InputError(NAME, f"a box names image {box.image_index} but the report has {len(sources)}")
    source = sources[box.image_index]
    rows, cols = int(source.dataset.Rows), int(source.dataset.Columns)
    x0, x1 = (min(max(v, 0.0), float(cols)) for v in (box.x0, box.x1))
    y0, y1 = (min(max(v, 0.0), float(rows)) for v in (box.y0, box.y1))
    points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=float)
    frames = [source.frame_number] if source.frame_number else None
    image = hd.sr.SourceImageForRegion.from_source_image(source.dataset, referenced_frame_numbers=frames)
    return hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=points, source_image=image)


def confidence(hd: Any, report: Report, finding: Finding) -> Any:
    return hd.sr.Measurement(
        name=coded(CONFIDENCE[0], EVLF_SCHEME, CONFIDENCE[1]),
        value=round(finding.confidence, 4),
        unit=coded("1", "UCUM", "no units"),
        algorithm_id=algorithm_id(hd, report),
    )


def algorithm_id(hd: Any, report: Report) -> Any:
    """TID 4019: the model by name, its weights' hash as version."""
    p = report.provenance
    return hd.sr.AlgorithmIdentification(name=clean(p.model_id)[:64], version=(p.weights_sha256 or f"evlf {p.evlf_version}")[:64])


def verification(hd: Any, finding: Finding) -> Any:
    status = finding.status
    return hd.sr.QualitativeEvaluation(
        name=coded(VERIFICATION[0], EVLF_SCHEME, VERIFICATION[1]),
        value=coded(status.upper(), EVLF_SCHEME, STATUS_MEANINGS[status]),
    )


def text_items(hd: Any, report: Report) -> Any:
    """TID 1500's "Qualitative Evaluations" container: the diagnosis and each reasoning step as TEXT items."""
    items = []
    d = report.diagnosis
    if d:
        text = f"{clean(d.primary)} (confidence {d.confidence:.2f})" + "".join(f"; {clean(i.label)} {i.probability:.2f}" for i in d.differential)
        items.append(hd.sr.TextContentItem(name=coded("DIAGNOSIS", EVLF_SCHEME, "Model diagnosis"), value=text, relationship_type="CONTAINS"))
    for n, step in enumerate(report.reasoning, start=1):
        items.append(hd.sr.TextContentItem(name=coded("REASONING", EVLF_SCHEME, "Model reasoning step"), value=f"{n}. {clean(step.text, '-')}", relationship_type="CONTAINS"))
    if not items:
        return None
    container = hd.sr.ContainerContentItem(name=coded(QUALITATIVE[0], "UMLS", QUALITATIVE[1]), relationship_type="CONTAINS")
    container.ContentSequence = hd.sr.ContentSequence(items)
    return container


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    register(Exporter(name=NAME, suffix=".dcm", media_type="application/dicom", export=export_sr, description="DICOM Comprehensive 3D SR, TID 1500 measurement report (DICOM input only)"))

"""`dicom-seg`: the findings' refined masks as a binary DICOM Segmentation (highdicom), one segment per finding.

Segments are made by an AUTOMATIC algorithm identified as the model. A finding
with a box but no mask (no refiner ran) becomes a filled box, labelled so; a
finding with neither is left out; a report with nothing to segment is an error.
Segment N's tracking UID equals the SR's for finding N, so the two objects link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.errors import InputError
from evlf.core.exporter import Exporter, ExportOptions
from evlf.core.hookspecs import hookimpl
from evlf.core.types import Finding, Report
from evlf.plugins.exporters.deidentify import deidentify_bytes
from evlf.plugins.exporters.dicom_common import (
    Source,
    algorithm,
    clean,
    coded,
    final_boxes,
    finding_type,
    load_sources,
    require_highdicom,
    series_kwargs,
    to_bytes,
    tracking_id,
    tracking_uid,
)

NAME = "dicom-seg"
#: SNOMED CT "Morphologically abnormal structure", the segmented property category of every finding.
ABNORMAL = ("49755003", "Morphologically abnormal structure")


def export_seg(report: Report, options: ExportOptions) -> bytes:
    hd = require_highdicom(NAME)
    import numpy as np

    sources = load_sources(report, options, NAME)
    check_multiframe(hd, sources)
    shapes = {(int(s.dataset.Rows), int(s.dataset.Columns)) for s in sources}
    series = {str(s.dataset.SeriesInstanceUID) for s in sources}
    if len(shapes) > 1 or len(series) > 1:
        raise InputError(NAME, "the source images differ in size or series; one Segmentation covers one series of equal-sized images")
    rows, cols = shapes.pop()
    planes: list[Any] = []
    descriptions = []
    for n, finding in enumerate(report.findings):
        planes_n = segment_planes(finding, sources, rows, cols)
        if planes_n is None:
            continue
        planes.append(planes_n)
        descriptions.append(describe(hd, report, finding, n, len(descriptions) + 1, boxed=finding.mask is None))
    if not descriptions:
        raise InputError(NAME, "no finding has a mask or a box: there is nothing to segment")
    pixels = np.stack(planes, axis=-1).astype(np.uint8)
    p = report.provenance
    try:
        seg = hd.seg.Segmentation(
            source_images=[s.dataset for s in sources],
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            manufacturer_model_name=p.model_id[:64],
            software_versions=f"evlf {p.evlf_version}",
            device_serial_number=(p.weights_sha256 or "unknown")[:64],
            pixel_measures=pixel_measures(hd, sources[0].dataset),
            **series_kwargs("evlf AI segmentation (not for clinical use)"),
        )
    except ValueError as exc:
        raise InputError(NAME, f"highdicom cannot derive a Segmentation from this source ({' '.join(str(exc).split())})") from None
    if "FrameOfReferenceUID" not in seg:  # no patient coordinates: General Image's orientation is then required (Type 2C)
        seg.PatientOrientation = sources[0].dataset.get("PatientOrientation", "")
    return deidentify_bytes(to_bytes(seg)) if options.deidentify else to_bytes(seg)


def check_multiframe(hd: Any, sources: list[Source]) -> None:
    """A multi-frame source needs patient coordinates (per-frame positions) for a Segmentation of one of its frames."""
    from highdicom.spatial import get_image_coordinate_system

    source = sources[0]
    if len(sources) == 1 and source.frames > 1 and get_image_coordinate_system(source.dataset) is None:
        raise InputError(NAME, f"the source has {source.frames} frames but no per-frame plane positions (e.g. an ultrasound cine): a Segmentation cannot say which frame it covers; use dicom-sr, which references the frame")


def pixel_measures(hd: Any, ds: Any) -> Any:
    """Source pixel spacing where the source has a usable one; otherwise None (highdicom copies the source's)."""
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if "PerFrameFunctionalGroupsSequence" in ds or (spacing and all(float(v) > 0 for v in spacing)):
        return None
    # The source states no positive spacing (e.g. a CR with PixelSpacing 0\0): 1 pixel = 1 unit, as documented.
    return hd.PixelMeasuresSequence(pixel_spacing=(1.0, 1.0), slice_thickness=1.0)


def plane_count(sources: list[Source]) -> int:
    """How many planes highdicom expects: the frames of one multi-frame source, else one per source image."""
    if len(sources) == 1:
        return sources[0].frames
    if any(s.frames > 1 for s in sources):
        raise InputError(NAME, "several source images, one of them multi-frame: one Segmentation covers one multi-frame image or several single-frame ones")
    return len(sources)


def plane_of(sources: list[Source], image_index: int) -> int:
    """The plane a report image's mask goes on: its frame in a multi-frame source, else its index."""
    if image_index >= len(sources):
        raise InputError(NAME, f"a finding names image {image_index} but the report has {len(sources)}")
    return sources[0].frame_index if len(sources) == 1 else image_index


def segment_planes(finding: Finding, sources: list[Source], rows: int, cols: int) -> Any:
    """The finding's mask on every plane (zeros where it is absent), or None when it has neither mask nor box."""
    import numpy as np

    planes = np.zeros((plane_count(sources), rows, cols), dtype=bool)
    if finding.mask is not None:
        mask = finding.mask.to_array()
        if mask.shape != (rows, cols):
            raise InputError(NAME, f"finding {finding.label!r} has a {mask.shape[1]}x{mask.shape[0]} mask on a {cols}x{rows} image")
        planes[plane_of(sources, finding.mask.image_index)] = mask
        return planes
    boxes = final_boxes(finding)
    if not boxes:
        return None
    for box in boxes:
        x0, y0 = max(int(box.x0), 0), max(int(box.y0), 0)
        x1, y1 = min(int(np.ceil(box.x1)), cols), min(int(np.ceil(box.y1)), rows)
        planes[plane_of(sources, box.image_index), y0:y1, x0:x1] = True
    return planes


def describe(hd: Any, report: Report, finding: Finding, n: int, number: int, boxed: bool) -> Any:
    label = f"{clean(finding.label)} (box)" if boxed else clean(finding.label)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label[:64],
        segmented_property_category=coded(ABNORMAL[0], "SCT", ABNORMAL[1]),
        segmented_property_type=finding_type(finding),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm(report),
        tracking_uid=tracking_uid(report, n, finding),
        tracking_id=tracking_id(n, finding),
    )


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    register(Exporter(name=NAME, suffix=".dcm", media_type="application/dicom", export=export_seg, description="DICOM Segmentation of the findings' masks (DICOM input only)"))

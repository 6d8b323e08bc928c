"""Reading a DICOM header defensively: numbers that may be malformed, text that is untrusted.

A mutated or hand-edited file can put anything in any element (a string in
NumberOfFrames, one value in PixelSpacing, raw bytes in Rows). Numbers the
decode needs are errors naming the element; optional ones are dropped; code
strings that break their VR are ignored; every text value is sanitised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evlf.core.errors import InputError
from evlf.core.imaging.quiet import quiet
from evlf.core.types import ImageMeta
from evlf.core.untrusted import is_code_string, sanitize_untrusted_text


def _value(ds: Any, keyword: str) -> Any:
    with quiet():
        try:
            return ds[keyword].value if keyword in ds else None
        except Exception:
            return _MALFORMED


_MALFORMED = object()


def header_int(path: Path, ds: Any, keyword: str, default: int | None = None) -> int:
    """One whole number from the header, or an InputError naming the element (never its raw bytes)."""
    value = _value(ds, keyword)
    if value is None or value == "":
        if default is None:
            raise InputError(path, f"the DICOM header has no {keyword}")
        return default
    try:
        if isinstance(value, (bytes, bytearray, str)) or value is _MALFORMED:
            raise TypeError
        number = float(value)
        if number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, f"malformed {keyword} in the DICOM header (not one whole number)") from None


def _optional_int(ds: Any, keyword: str) -> int | None:
    try:
        return header_int(Path(), ds, keyword) if keyword in ds else None
    except InputError:
        return None


def _spacing(ds: Any) -> tuple[float, float] | None:
    """(row, column) spacing in mm; None when absent, malformed, not two values, or zero (not calibrated)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _value(ds, keyword)
        if value is None or value is _MALFORMED or isinstance(value, (str, bytes, bytearray)):
            continue
        try:
            pair = (float(value[0]), float(value[1])) if len(value) == 2 else None
        except (TypeError, ValueError, IndexError, OverflowError):
            pair = None
        if pair and min(pair) > 0 and all(v < 1e6 for v in pair):
            return pair
        return None
    return None


def _text(ds: Any, keyword: str, max_chars: int = 64) -> str | None:
    value = _value(ds, keyword)
    if value is None or value is _MALFORMED or isinstance(value, (bytes, bytearray)):
        return None
    return sanitize_untrusted_text(value, max_chars) or None


def _code(ds: Any, keyword: str) -> str | None:
    """A code string (Modality, BodyPartExamined...) when well-formed; a malformed one is ignored."""
    value = _value(ds, keyword)
    if not isinstance(value, str) or not is_code_string(value):
        return None
    return value.strip() or None


def meta_from(ds: Any) -> ImageMeta:
    """The routing and display facts of a DICOM header, sanitised."""
    return ImageMeta(
        modality=_code(ds, "Modality"),
        body_part=_code(ds, "BodyPartExamined"),
        laterality=_code(ds, "ImageLaterality") or _code(ds, "Laterality"),
        view=_code(ds, "ViewPosition"),
        pixel_spacing=_spacing(ds),
        photometric=_code(ds, "PhotometricInterpretation"),
        bits_stored=_optional_int(ds, "BitsStored"),
        samples_per_pixel=_optional_int(ds, "SamplesPerPixel"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        manufacturer=_text(ds, "Manufacturer"),
    )


def transfer_syntax(ds: Any, *, as_uid: bool = False) -> Any:
    """The file's transfer syntax (its name by default), or None when the file meta has none."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if as_uid:
        return uid
    return getattr(uid, "name", str(uid))


def is_truncated(ds: Any) -> bool:
    """A file without image attributes whose SOP class says it is an image (or with no dataset at all) was cut short."""
    if len(ds) == 0:
        return True
    meta = getattr(ds, "file_meta", None)
    for uid in (_value(ds, "SOPClassUID"), _value(meta, "MediaStorageSOPClassUID") if meta is not None else None):
        name = str(getattr(uid, "name", "") or "")
        if "Image Storage" in name:
            return True
    return False

"""What routing can see in a study: header facts, user hints and image evidence.

Specialties score studies from this shared, cheap summary instead of each
re-reading pixels. Header facts come from DICOM tags (Modality,
BodyPartExamined, SOP class, study/series description); hints come from the
user (`Study.metadata["modality"]`, `["body_part"]`); image evidence is
measured on a downsampled 8-bit rendering: colour vs grayscale, spatial
structure (noise has none), a fundus-like disc on black, and stain-like
brightfield microscopy (hematoxylin-stained nuclei, no black regions).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from evlf.core.types import LoadedImage, Study

#: Canonical modality codes (DICOM where one exists) -> words people use for them.
MODALITY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "CT": ("ct", "computed tomography", "cta", "hrct", "ct scan"),
    "MR": ("mr", "mri", "magnetic resonance", "t1", "t2", "flair", "dwi"),
    "CR": ("cr", "computed radiography"),
    "DX": ("dx", "dr", "x-ray", "xray", "x ray", "radiograph", "radiography", "cxr", "plain film"),
    "US": ("us", "ultrasound", "sonography", "echography", "doppler"),
    "MG": ("mg", "mammography", "mammogram"),
    "XA": ("xa", "angiography", "fluoroscopy", "rf"),
    "NM": ("nm", "scintigraphy", "spect"),
    "PT": ("pt", "pet", "pet-ct", "pet/ct"),
    "OP": ("op", "fundus", "fundus photo", "fundus photography", "cfp", "retinal photo", "color fundus", "ffa"),
    "OPT": ("opt", "oct", "optical coherence tomography"),
    "SM": (
        "sm",
        "pathology",
        "histopathology",
        "histology",
        "wsi",
        "whole slide",
        "h&e",
        "he",
        "ihc",
        "immunohistochemistry",
        "cytology",
        "microscopy",
        "slide",
    ),
    "DMS": ("dms", "dermoscopy", "dermatoscopy", "dermoscopic"),
    "XC": ("xc", "clinical photo", "clinical photograph", "clinical photography", "skin photo", "photo", "photograph"),
}

#: What each canonical code means, for listings.
MODALITY_NAMES: dict[str, str] = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "CR": "computed radiography",
    "DX": "digital radiography",
    "US": "ultrasound",
    "MG": "mammography",
    "XA": "angiography/fluoroscopy",
    "NM": "nuclear medicine",
    "PT": "PET",
    "OP": "fundus photography",
    "OPT": "OCT",
    "SM": "slide microscopy (H&E, IHC)",
    "DMS": "dermoscopy",
    "XC": "clinical photograph",
}

_SYNONYM_TO_CODE: dict[str, str] = {syn: code for code, syns in MODALITY_SYNONYMS.items() for syn in syns}

#: DICOM SOP classes that settle the modality on their own.
SOP_CLASS_MODALITY: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.2": "MG",
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR",
    "1.2.840.10008.5.1.4.1.1.6.1": "US",
    "1.2.840.10008.5.1.4.1.1.3.1": "US",
    "1.2.840.10008.5.1.4.1.1.77.1.2": "SM",  # VL Microscopic Image
    "1.2.840.10008.5.1.4.1.1.77.1.3": "SM",  # VL Slide-Coordinates Microscopic Image
    "1.2.840.10008.5.1.4.1.1.77.1.6": "SM",  # VL Whole Slide Microscopy Image
    "1.2.840.10008.5.1.4.1.1.77.1.4": "XC",  # VL Photographic Image
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "XC",  # Video Photographic Image
    "1.2.840.10008.5.1.4.1.1.77.1.7": "DMS",  # Dermoscopic Photography Image
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "OP",  # Ophthalmic Photography 8 Bit
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "OP",  # Ophthalmic Photography 16 Bit
    "1.2.840.10008.5.1.4.1.1.77.1.5.4": "OPT",  # Ophthalmic Tomography
    "1.2.840.10008.5.1.4.1.1.77.1.5.7": "OP",  # Wide Field Ophthalmic Photography (stereographic)
    "1.2.840.10008.5.1.4.1.1.77.1.5.8": "OP",  # Wide Field Ophthalmic Photography (3D)
}

#: Body regions routing cares about -> words in BodyPartExamined or descriptions.
REGION_WORDS: dict[str, tuple[str, ...]] = {
    "chest": ("chest", "thorax", "thoracic", "lung", "lungs", "pulmonary", "cxr", "pleura", "mediastinum"),
    "liver": ("liver", "hepatic", "hepato", "hepatobiliary", "hcc", "cirrhosis", "biliary", "gallbladder"),
    "abdomen": ("abdomen", "abdominal", "abd", "abdomenpelvis", "pelvis", "kidney", "renal", "pancreas", "spleen"),
    "eye": ("eye", "retina", "retinal", "fundus", "macula", "optic disc", "orbit"),
    "skin": ("skin", "derm", "dermoscopy", "lesion", "mole", "nevus", "naevus"),
    "head": ("head", "brain", "skull", "cranial", "neuro", "sinus"),
    "spine": ("spine", "cspine", "tspine", "lspine", "lumbar", "cervical", "vertebra"),
    "extremity": (
        "knee", "shoulder", "hip", "hand", "wrist", "ankle", "foot", "elbow", "leg", "arm", "extremity", "femur",
    ),
    "breast": ("breast", "mammo"),
}


def normalize_modality(text: str | None) -> str | None:
    """A modality word or DICOM code -> canonical code ('fundus' -> 'OP'); None when unknown."""
    if not text:
        return None
    key = text.strip().lower()
    if key.upper() in MODALITY_SYNONYMS:
        return key.upper()
    return _SYNONYM_TO_CODE.get(key)


def regions_in(text: str | None) -> set[str]:
    """Body regions named in a tag value or description (whole words, case-insensitive)."""
    if not text:
        return set()
    words = set(re.findall(r"[a-z]+", text.lower().replace("_", " ")))
    joined = " ".join(re.findall(r"[a-z]+", text.lower()))
    found = set()
    for region, names in REGION_WORDS.items():
        for name in names:
            if (" " in name and name in joined) or name in words:
                found.add(region)
                break
    return found


class ImageEvidence(BaseModel):
    """Routing facts about one image; `describe()` is what a refusal message shows."""

    source: str = ""
    width: int
    height: int
    bit_depth: int
    modality: str | None = None
    body_part: str | None = None
    sop_class_uid: str | None = None
    photometric: str | None = None
    view: str | None = None
    laterality: str | None = None
    description: str = ""
    colour: bool
    colour_fraction: float = Field(ge=0, le=1)
    structure: float = Field(description="neighbour-pixel correlation: about 0 for noise, near 1 for real images")
    dark_fraction: float
    white_fraction: float
    fundus: float = Field(0.0, ge=0, le=1, description="how much this looks like a colour fundus photograph")
    stain: float = Field(0.0, ge=0, le=1, description="how much this looks like a stained brightfield micrograph")

    @property
    def aspect(self) -> float:
        return self.width / self.height if self.height else 0.0

    @property
    def is_structured(self) -> bool:
        return self.structure >= 0.5

    def describe(self) -> str:
        colour = "colour" if self.colour else "grayscale"
        parts = [f"file {self.source}"] if self.source else []
        parts += [
            f"modality {self.modality or 'unknown'}",
            f"body part {self.body_part or 'unknown'}",
            colour,
            f"{self.width}x{self.height}",
            f"{self.bit_depth}-bit",
        ]
        if self.description:
            parts.append(f"description {self.description!r}")
        if not self.is_structured:
            parts.append("no spatial structure (noise-like)")
        return ", ".join(parts)


class StudyEvidence(BaseModel):
    """Everything specialties score from: per-image evidence plus study-level codes, regions and hints."""

    images: list[ImageEvidence]
    modalities: set[str] = Field(default_factory=set, description="canonical codes from headers, SOP classes, hints")
    hinted_modalities: set[str] = Field(default_factory=set, description="codes the user gave in Study.metadata")
    regions: set[str] = Field(default_factory=set)
    hint_text: str = ""

    def has_modality(self, *codes: str) -> bool:
        return bool(self.modalities & set(codes))

    def has_region(self, *regions: str) -> bool:
        return bool(self.regions & set(regions))

    @property
    def all_colour(self) -> bool:
        return bool(self.images) and all(i.colour for i in self.images)

    @property
    def all_structured(self) -> bool:
        return bool(self.images) and all(i.is_structured for i in self.images)

    def describe(self) -> str:
        parts = [f"image {n + 1}: {ev.describe()}" for n, ev in enumerate(self.images)] or ["no images"]
        if self.hint_text:
            parts.append(f"hints: {self.hint_text}")
        return "; ".join(parts)


def _thumbnail(rgb: np.ndarray, max_side: int = 384) -> np.ndarray:
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / max_side)))
    return np.ascontiguousarray(rgb[::step, ::step, :3]).astype(np.float32) / 255.0


def _structure(gray: np.ndarray) -> float:
    if gray.size < 4 or float(gray.std()) < 1e-6:
        return 0.0
    a, b = gray[:, :-1].ravel(), gray[:, 1:].ravel()
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _fundus_score(rgb: np.ndarray, gray: np.ndarray) -> float:
    """A bright, reddish, disc-shaped field on a black surround (colour fundus photography)."""
    h, w = gray.shape
    c = max(2, min(h, w) // 12)
    corners = np.concatenate([gray[:c, :c].ravel(), gray[:c, -c:].ravel(), gray[-c:, :c].ravel(), gray[-c:, -c:].ravel()])
    if corners.mean() > 0.08:
        return 0.0
    field = gray > 0.1
    if field.mean() < 0.3:
        return 0.0
    ys, xs = np.nonzero(field)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    radius = max(ys.max() - ys.min(), xs.max() - xs.min()) / 2
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    union = np.logical_or(disc, field).sum()
    disc_iou = np.logical_and(disc, field).sum() / union if union else 0.0
    r, g, b = (float(rgb[..., i][field].mean()) for i in range(3))
    reddish = r > 1.5 * g and r > 1.5 * b  # fundus R/G is about 2-3; brown fur or wood is about 1.3
    if disc_iou < 0.8 or not reddish:
        return 0.0
    return float(min(1.0, 0.5 + (disc_iou - 0.8) * 2.5))


# Ruifrok & Johnston stain optical-density vectors (hematoxylin, eosin, DAB).
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_UNMIX = np.linalg.inv(_STAINS / np.linalg.norm(_STAINS, axis=1, keepdims=True))


def _stain_score(rgb: np.ndarray, dark_fraction: float) -> float:
    """Brightfield stained tissue: bright overall, no black regions, many small hematoxylin-dominant blobs.

    Blue sky is hematoxylin-coloured too, but it fills the frame and is darker
    than a lit slide; brown fur has no hematoxylin at all.
    """
    if dark_fraction > 0.05 or float(rgb.mean()) < 0.45:
        return 0.0
    green = ((rgb[..., 1] > rgb[..., 0] + 0.03) & (rgb[..., 1] > rgb[..., 2] + 0.03)).mean()
    if green > 0.05:
        return 0.0
    od = -np.log(np.clip(rgb, 1 / 255, 1.0))
    conc = (od.reshape(-1, 3) @ _UNMIX).reshape(*rgb.shape[:2], 3)
    hema, eosin, dab = conc[..., 0], conc[..., 1], conc[..., 2]
    nuclei = (hema > 0.15) & (hema > eosin) & (hema > dab)
    fraction = float(nuclei.mean())
    if not 0.03 <= fraction <= 0.7:
        return 0.0
    from scipy import ndimage

    labels, _ = ndimage.label(nuclei)
    sizes = np.bincount(labels.ravel())[1:]
    scale = (384 * 384) / max(1, rgb.shape[0] * rgb.shape[1])  # blobs per thumbnail of the reference size
    blobs = int(((sizes >= 4) & (sizes <= 1500)).sum()) * scale
    if blobs < 60:
        return 0.0
    return float(min(1.0, 0.5 + blobs / 1000))


_CACHE: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}


def _pixel_facts(rgb: np.ndarray, photometric: str) -> dict[str, Any]:
    """The pixel measurements, cached on the rendering array so several specialties share the work."""
    key = id(rgb)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is rgb and hit[1]["photometric"] == photometric:
        return hit[1]
    facts = _measure_pixels(rgb, photometric)
    try:
        _CACHE[key] = (weakref.ref(rgb), facts)
    except TypeError:  # pragma: no cover - arrays that cannot be weakly referenced
        pass
    if len(_CACHE) > 256:
        for k in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
            _CACHE.pop(k, None)
    return facts


def _measure_pixels(rgb: np.ndarray, photometric: str) -> dict[str, Any]:
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    thumb = _thumbnail(rgb)
    gray = thumb.mean(axis=2)
    chroma = thumb.max(axis=2) - thumb.min(axis=2)
    colour_fraction = float((chroma > 0.08).mean())
    colour = colour_fraction > 0.05 and not photometric.upper().startswith("MONOCHROME")
    dark = float((thumb.max(axis=2) < 0.2).mean())
    white = float((thumb.min(axis=2) > 0.8).mean())
    structure = _structure(gray)
    fundus = _fundus_score(thumb, gray) if colour and structure >= 0.5 else 0.0
    stain = _stain_score(thumb, dark) if colour and structure >= 0.5 and fundus == 0 else 0.0
    return {
        "photometric": photometric,
        "colour": colour,
        "colour_fraction": colour_fraction,
        "structure": structure,
        "dark_fraction": dark,
        "white_fraction": white,
        "fundus": fundus,
        "stain": stain,
    }


def _bit_depth(image: LoadedImage) -> int:
    if image.meta.bits_stored:
        return int(image.meta.bits_stored)
    return int(np.asarray(image.pixels).dtype.itemsize * 8)


def image_evidence(image: LoadedImage) -> ImageEvidence:
    """Measure one image: header facts from `meta`, pixel facts from the 8-bit rendering."""
    meta = image.meta
    facts = dict(_pixel_facts(np.asarray(image.rgb), meta.photometric or ""))
    facts.pop("photometric")
    description = " / ".join(d for d in (meta.study_description, meta.series_description) if d)
    return ImageEvidence(
        source=image.path.name,
        width=image.width,
        height=image.height,
        bit_depth=_bit_depth(image),
        modality=meta.modality,
        body_part=meta.body_part,
        sop_class_uid=meta.sop_class_uid,
        photometric=meta.photometric,
        view=meta.view,
        laterality=meta.laterality,
        description=description,
        **facts,
    )


def _hint_values(metadata: dict[str, Any], keys: Iterable[str]) -> list[str]:
    out = []
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
        elif isinstance(value, (list, tuple)):
            out.extend(str(v) for v in value if str(v).strip())
    return out


def study_evidence(study: Study, images: list[LoadedImage]) -> StudyEvidence:
    """Combine per-image evidence with the study's hints (metadata modality/body part/description)."""
    per_image = [image_evidence(img) for img in images]
    modalities: set[str] = set()
    regions: set[str] = set()
    for ev in per_image:
        for code in (normalize_modality(ev.modality), SOP_CLASS_MODALITY.get(ev.sop_class_uid or "")):
            if code:
                modalities.add(code)
        regions |= regions_in(ev.body_part) | regions_in(ev.description)
    md = study.metadata or {}
    mod_hints = _hint_values(md, ("modality", "modalities"))
    part_hints = _hint_values(md, ("body_part", "body_parts", "region", "anatomy", "description"))
    hinted = {code for code in (normalize_modality(h) for h in mod_hints) if code}
    for h in mod_hints:  # "chest x-ray", "liver CT": a region inside a modality phrase
        regions |= regions_in(h)
        if normalize_modality(h) is None:
            hinted |= {code for word in re.split(r"[\s/,;]+", h) if (code := normalize_modality(word))}
    for h in part_hints:
        regions |= regions_in(h)
    hint_text = ", ".join(f"{k}={md[k]!r}" for k in ("modality", "body_part", "description") if md.get(k))
    return StudyEvidence(
        images=per_image,
        modalities=modalities | hinted,
        hinted_modalities=hinted,
        regions=regions,
        hint_text=hint_text,
    )

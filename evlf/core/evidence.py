"""What routing can see in a study: header facts, user hints and image evidence.

Specialties score studies from this shared, cheap summary instead of each
re-reading pixels. Header facts come from DICOM tags (Modality,
BodyPartExamined, SOP class, study/series description); hints come from the
user (`Study.metadata["modality"]`, `["body_part"]`); image evidence comes from
`evlf.core.pixel_evidence`.

Header text is untrusted: it is sanitised before it enters the evidence, a
BodyPartExamined that is not a well-formed code string is ignored, and body
regions read from headers only refine a modality the header or the user
established (a StudyDescription alone cannot send an image to a specialist).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from evlf.core.pixel_evidence import pixel_facts
from evlf.core.types import LoadedImage, Study
from evlf.core.untrusted import is_code_string, sanitize_untrusted_text
from evlf.core.vocabulary import (
    MODALITY_NAMES,
    MODALITY_SYNONYMS,
    REGION_WORDS,
    SOP_CLASS_MODALITY,
    normalize_modality,
    regions_in,
)

__all__ = [
    "MODALITY_NAMES",
    "MODALITY_SYNONYMS",
    "REGION_WORDS",
    "SOP_CLASS_MODALITY",
    "ImageEvidence",
    "StudyEvidence",
    "image_evidence",
    "normalize_modality",
    "regions_in",
    "study_evidence",
]


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
    regions: set[str] = Field(default_factory=set, description="regions from hints, and from headers when a modality is known")
    header_regions: set[str] = Field(default_factory=set, description="regions the headers name, counted or not")
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


def _bit_depth(image: LoadedImage) -> int:
    if image.meta.bits_stored:
        return int(image.meta.bits_stored)
    return int(np.asarray(image.pixels).dtype.itemsize * 8)


def _code(value: str | None) -> str | None:
    """A header code string (Modality, BodyPartExamined) when well-formed, else None: malformed ones are ignored."""
    return sanitize_untrusted_text(value, 16) if is_code_string(value) else None


def _text(value: str | None, max_chars: int = 64) -> str | None:
    return sanitize_untrusted_text(value, max_chars) or None


def image_evidence(image: LoadedImage) -> ImageEvidence:
    """Measure one image: sanitised header facts from `meta`, pixel facts from the 8-bit rendering."""
    meta = image.meta
    facts = dict(pixel_facts(np.asarray(image.rgb), meta.photometric or ""))
    facts.pop("photometric")
    descriptions = (_text(meta.study_description), _text(meta.series_description))
    return ImageEvidence(
        source=sanitize_untrusted_text(image.path.name),
        width=image.width,
        height=image.height,
        bit_depth=_bit_depth(image),
        modality=_code(meta.modality),
        body_part=_code(meta.body_part),
        sop_class_uid=_text(meta.sop_class_uid),
        photometric=_text(meta.photometric, 16),
        view=_text(meta.view, 16),
        laterality=_text(meta.laterality, 16),
        description=" / ".join(d for d in descriptions if d),
        **facts,
    )


def _hint_values(metadata: dict[str, Any], keys: Iterable[str]) -> list[str]:
    out = []
    for key in keys:
        value = metadata.get(key)
        values = value if isinstance(value, (list, tuple)) else [value] if isinstance(value, str) else []
        out.extend(text for v in values if (text := sanitize_untrusted_text(v)))
    return out


def _header_facts(per_image: list[ImageEvidence]) -> tuple[set[str], set[str]]:
    """Modality codes and body regions the headers name."""
    modalities: set[str] = set()
    regions: set[str] = set()
    for ev in per_image:
        for code in (normalize_modality(ev.modality), SOP_CLASS_MODALITY.get(ev.sop_class_uid or "")):
            if code:
                modalities.add(code)
        regions |= regions_in(ev.body_part) | regions_in(ev.description)
    return modalities, regions


def _hinted_facts(md: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Modality codes and body regions the user gave in Study.metadata."""
    mod_hints = _hint_values(md, ("modality", "modalities"))
    part_hints = _hint_values(md, ("body_part", "body_parts", "region", "anatomy", "description"))
    hinted = {code for code in (normalize_modality(h) for h in mod_hints) if code}
    regions: set[str] = set()
    for h in mod_hints:  # "chest x-ray", "liver CT": a region inside a modality phrase
        regions |= regions_in(h)
        if normalize_modality(h) is None:
            hinted |= {code for word in re.split(r"[\s/,;]+", h) if (code := normalize_modality(word))}
    for h in part_hints:
        regions |= regions_in(h)
    return hinted, regions


def study_evidence(study: Study, images: list[LoadedImage]) -> StudyEvidence:
    """Combine per-image evidence with the study's hints (metadata modality/body part/description).

    Regions named only by header text count when a modality is known (from a
    header or the user); otherwise a description such as "skin lesion" on an
    unknown-modality image would route it on its own.
    """
    per_image = [image_evidence(img) for img in images]
    header_modalities, header_regions = _header_facts(per_image)
    md = study.metadata or {}
    hinted, hinted_regions = _hinted_facts(md)
    modalities = header_modalities | hinted
    regions = hinted_regions | (header_regions if modalities else set())
    hint_text = ", ".join(
        f"{k}={sanitize_untrusted_text(md[k])!r}" for k in ("modality", "body_part", "description") if md.get(k)
    )
    return StudyEvidence(
        images=per_image,
        modalities=modalities,
        hinted_modalities=hinted,
        regions=regions,
        header_regions=header_regions,
        hint_text=hint_text,
    )

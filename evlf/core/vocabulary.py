"""The words routing understands: modality codes and their synonyms, SOP classes, body regions.

Shared by the evidence summary, the CLI's listings and the specialty plugins,
so a new synonym is added in one place.
"""

from __future__ import annotations

import re

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

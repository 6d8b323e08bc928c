"""A starter case bank from the real medical images that installed registry packages ship.

Metadata is only what is known for sure about each file (modality, body part,
view, from its DICOM header or its package's documentation); no diagnosis is
invented, so every label list is empty: `evlf cases search` finds them, but the
retrieve node never shows an unlabelled case to the model (it says so in the
report's warnings). The images are copied into the store, so the bank does not
depend on where the packages sit.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from pydantic import BaseModel

from evlf.core.errors import ConfigError
from evlf.retrieval.case import Case
from evlf.retrieval.store import CaseStore

PYDICOM = "pydicom MIT licence; NEMA WG04 sample dataset via pydicom test files"
PYDICOM_DATA = "MIT (pydicom-data package)"
SKIMAGE = "scikit-image BSD-3-Clause package"


class StarterImage(BaseModel):
    case_id: str
    package: str  # importable module whose folder holds the file
    relpath: str
    frame: int | None = None
    modality: str
    specialty: str
    body_part: str | None = None
    view: str | None = None
    source: str
    licence: str
    note: str | None = None


STARTER: tuple[StarterImage, ...] = (
    # CT
    StarterImage(case_id="starter-ct-small", package="pydicom.data", relpath="test_files/CT_small.dcm", modality="CT", specialty="radiology",
                 source="pydicom test file CT_small.dcm (downsized NEMA WG04 CT1_UNC)", licence=PYDICOM),
    StarterImage(case_id="starter-ct-693", package="data_store", relpath="data/693_UNCR.dcm", modality="CT", specialty="radiology",
                 source="pydicom-data 693_UNCR.dcm (series '5/5mm Plain')", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-ct-enhanced", package="data_store", relpath="data/eCT_Supplemental.dcm", frame=0, modality="CT", specialty="radiology",
                 source="pydicom-data eCT_Supplemental.dcm (NEMA multiframe CT0012)", licence=PYDICOM_DATA + "; NEMA multiframe sample"),
    StarterImage(case_id="starter-ct-pancreas", package="data_store", relpath="data/explicit_VR-UN.dcm", modality="CT", specialty="radiology", body_part="PANCREAS",
                 source="pydicom-data explicit_VR-UN.dcm (de-identified image from The Cancer Imaging Archive)", licence=PYDICOM_DATA + "; TCIA de-identified public data"),
    # MR
    StarterImage(case_id="starter-mr-small", package="pydicom.data", relpath="test_files/MR_small.dcm", modality="MR", specialty="radiology",
                 source="pydicom test file MR_small.dcm (downsized NEMA WG04 MR1_UNC)", licence=PYDICOM),
    StarterImage(case_id="starter-mr-shoulder", package="data_store", relpath="data/MR2_UNCR.dcm", modality="MR", specialty="radiology", body_part="SHOULDER",
                 source="pydicom-data MR2_UNCR.dcm (NEMA WG04; study 'SHOULDER')", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-mr-head", package="data_store", relpath="data/emri_small.dcm", modality="MR", specialty="radiology", body_part="HEAD",
                 source="pydicom-data emri_small.dcm (enhanced MR, middle frame)", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-mr-abdomen", package="data_store", relpath="data/MR-SIEMENS-DICOM-WithOverlays.dcm", modality="MR", specialty="radiology", body_part="ABDOMEN",
                 source="pydicom-data MR-SIEMENS-DICOM-WithOverlays.dcm", licence=PYDICOM_DATA),
    # CR (radiographs)
    StarterImage(case_id="starter-cr-chest", package="data_store", relpath="data/RG1_UNCR.dcm", modality="CR", specialty="radiology", body_part="CHEST", view="PA",
                 source="pydicom-data RG1_UNCR.dcm (NEMA WG04 chest radiograph)", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-cr-leg", package="data_store", relpath="data/RG3_UNCR.dcm", modality="CR", specialty="radiology", body_part="EXTREMITY", view="AP",
                 source="pydicom-data RG3_UNCR.dcm (NEMA WG04 lower-leg radiograph)", licence=PYDICOM_DATA),
    # US
    StarterImage(case_id="starter-us-rgb", package="data_store", relpath="data/US1_UNCR.dcm", modality="US", specialty="radiology",
                 source="pydicom-data US1_UNCR.dcm (NEMA WG04 ultrasound)", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-us-palette", package="data_store", relpath="data/OBXXXX1A.dcm", modality="US", specialty="radiology",
                 source="pydicom-data OBXXXX1A.dcm (palette-colour ultrasound)", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-us-echo", package="data_store", relpath="data/color-px.dcm", modality="US", specialty="radiology", body_part="HEART",
                 source="pydicom-data color-px.dcm (study 'Echocardiogram', series 'Transesophageal Echocardiogram')", licence=PYDICOM_DATA),
    StarterImage(case_id="starter-us-aloka", package="data_store", relpath="data/gdcm-US-ALOKA-16.dcm", modality="US", specialty="radiology",
                 source="pydicom-data gdcm-US-ALOKA-16.dcm (from GDCM)", licence=PYDICOM_DATA + "; GDCM BSD licence"),
    # NM
    StarterImage(case_id="starter-nm-bone", package="data_store", relpath="data/JPEG2000_UNC.dcm", modality="NM", specialty="radiology", body_part="WHOLE BODY",
                 source="pydicom-data JPEG2000_UNC.dcm (NEMA WG04 NM1, study 'Whole Body Bone')", licence=PYDICOM_DATA),
    # fundus
    StarterImage(case_id="starter-fundus-retina", package="skimage.data", relpath="retina.jpg", modality="fundus", specialty="ophthalmology", body_part="EYE",
                 source="scikit-image retina.jpg (Wikimedia 'Fundus photograph of normal left eye', Häggström 2014)", licence="CC0 1.0 (image); " + SKIMAGE,
                 note="the source titles it a normal left eye; not recorded as a label"),
    StarterImage(case_id="starter-fundus-hrf", package="skimage.data", relpath="microaneurysms.png", modality="fundus", specialty="ophthalmology", body_part="EYE",
                 source="scikit-image microaneurysms.png (green-channel crop of HRF database image 07_dr.JPG)", licence="CC0 (owner Andreas Maier); " + SKIMAGE),
    # pathology
    StarterImage(case_id="starter-path-ihc", package="skimage.data", relpath="ihc.png", modality="pathology", specialty="pathology", body_part="COLON",
                 source="scikit-image ihc.png (colonic glands, IHC for FHL2 with DAB, hematoxylin counterstain; CMMI)", licence="no known copyright restrictions; " + SKIMAGE),
    StarterImage(case_id="starter-path-tcga", package="pydicom.data", relpath="test_files/SC_jpeg_no_color_transform.dcm", modality="pathology", specialty="pathology",
                 source="pydicom test file SC_jpeg_no_color_transform.dcm (tile of a TCGA whole-slide image, via TCIA)", licence="pydicom MIT licence; TCGA/TCIA public data"),
)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the starter bank needs the package providing {module!r} (pydicom, pydicom-data, scikit-image)")
    return Path(next(iter(spec.submodule_search_locations)))


def starter_cases(image_dir: Path) -> list[Case]:
    """Copy the starter images into `image_dir` and describe each as a case (no labels)."""
    image_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for item in STARTER:
        src = _package_dir(item.package) / item.relpath
        if not src.is_file():
            raise ConfigError(f"{src}: starter image missing from its package")
        dst = image_dir / f"{item.case_id}{src.suffix}"
        if not dst.exists():
            shutil.copyfile(src, dst)
        cases.append(
            Case(
                case_id=item.case_id,
                image_path=str(dst.resolve()),
                frame=item.frame,
                specialty=item.specialty,
                modality=item.modality,
                body_part=item.body_part,
                view=item.view,
                source=item.source,
                licence=item.licence,
                note=item.note,
            )
        )
    return cases


def build_starter(store: CaseStore) -> list[str]:
    """Add the starter cases the store does not hold yet; returns the ids added."""
    cases = [c for c in starter_cases(store.root / "images") if c.case_id not in store]
    store.add(cases)
    return [c.case_id for c in cases]

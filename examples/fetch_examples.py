"""Write the bundled example images into examples/images/ from packages that ship them.

The images are real and installed from the package registry (pydicom's test
files, pydicom-data, scikit-image's data); nothing third-party is committed.
`lesion_case.png` is a held-out case of evlf's synthetic lesion set: a
computer-drawn lesion on a crop of the real chest radiograph, the kind of image
the demo model was trained on. Run once; files that exist are kept.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "images"

DICOM_FILES = {
    "chest_cr.dcm": "RG1_UNCR.dcm",  # pydicom-data: chest radiograph, MONOCHROME1
    "ct_small.dcm": "CT_small.dcm",  # pydicom: CT slice
    "mr_small.dcm": "MR_small.dcm",  # pydicom: MR slice
    "ultrasound.dcm": "US1_UNCR.dcm",  # pydicom-data: ultrasound, RGB
}


#: A held-out case of the synthetic lesion set (test split, seed 0): a drawn lesion on a real chest radiograph crop.
LESION_CASE = "lesion_case.png"


def lesion_index(limit: int = 200) -> int:
    """The first test-split case with a lesion drawn on the chest radiograph background (fixed by rule, not by results)."""
    from evlf.eval.lesions import make_sample

    for i in range(limit):
        s = make_sample(0, "test", i)
        if s.modality == "CR" and s.label != "normal":
            return i
    raise SystemExit("no chest-radiograph lesion case in the test split")


def main() -> int:
    from pydicom.data import get_testdata_file
    from skimage import data, io

    OUT.mkdir(parents=True, exist_ok=True)
    for target, name in DICOM_FILES.items():
        dest = OUT / target
        if not dest.exists():
            src = get_testdata_file(name)
            if src is None:
                print(f"missing {name}: install pydicom-data", file=sys.stderr)
                return 1
            shutil.copyfile(src, dest)
    for target, loader in {"fundus.png": data.retina, "ihc.png": data.immunohistochemistry}.items():
        dest = OUT / target
        if not dest.exists():
            io.imsave(dest, loader(), check_contrast=False)
    lesion = OUT / LESION_CASE
    if not lesion.exists():
        from PIL import Image

        from evlf.eval.lesions import make_sample

        Image.fromarray(make_sample(0, "test", lesion_index()).image).save(lesion)
    print(f"examples in {OUT}: {', '.join(sorted(p.name for p in OUT.iterdir()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

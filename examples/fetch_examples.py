"""Write the bundled example images into examples/images/ from packages that ship them.

The images are real and installed from the package registry (pydicom's test
files, pydicom-data, scikit-image's data); nothing third-party is committed.
Run once; files that exist are kept.
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
    print(f"examples in {OUT}: {', '.join(sorted(p.name for p in OUT.iterdir()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

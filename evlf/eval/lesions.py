"""The seeded lesion benchmark: synthetic lesions with known masks on real, registry-shipped backgrounds.

No public grounding set installs offline, so grounding (mIoU, Acc@0.5) and
classification are measured on lesions we draw ourselves: round nodules,
irregular masses and ring-shaped cysts (plus lesion-free "normal" images) of
varied size, contrast, texture and edge blur, placed on random crops of real
CT, MR, chest radiograph, fundus and pathology images. Every sample is drawn
from its own generator keyed by (seed, split, index), so a split's cases do
not depend on the other split's size. Written as PNG images, binary PNG masks
and JSONL in the format of docs/dataset-format.md.

The backgrounds are few (five source images), so train and test share them;
the lesions, crops and intensity changes differ. The chest radiograph
(RG1_UNCR) itself shows round opacities that are not labelled: its "normal"
crops are normal only in the sense of carrying no drawn lesion.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from evlf.core.errors import InputError
from evlf.core.pixels import percentile_window

#: Bump when the generator changes what it draws; it names the cache folder.
VERSION = "v2"

#: Classification labels of the set; "normal" images carry no boxes.
LESION_LABELS: tuple[str, ...] = ("nodule", "mass", "cyst", "normal")

DEFAULT_SIZES: dict[str, int] = {"train": 600, "test": 200}
QUESTION = "Is there a nodule, mass or cyst in this image? Name it and draw a box around each lesion, or answer normal."

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Background:
    modality: str
    specialty: str
    source: str
    licence: str


BACKGROUNDS: dict[str, Background] = {
    "CT": Background("CT", "radiology", "pydicom test file CT_small.dcm", "MIT (pydicom)"),
    "MR": Background("MR", "radiology", "pydicom test file MR_small.dcm", "MIT (pydicom)"),
    "CR": Background("CR", "pulmonology", "pydicom-data RG1_UNCR.dcm (chest radiograph)", "MIT (pydicom-data)"),
    "fundus": Background(
        "fundus", "ophthalmology", "scikit-image data.retina (Wikimedia, M. Häggström)", "CC0-1.0"
    ),
    "pathology": Background(
        "pathology",
        "pathology",
        "scikit-image data.immunohistochemistry (CMMI)",
        "no known copyright restrictions",
    ),
}
MIN_VISIBLE = 0.06  # least mean intensity change over a lesion's mask (of the 0-1 range)
_SPLIT_CODE = {"train": 1, "test": 2}


def _shrink(a: np.ndarray, long_side: int) -> np.ndarray:
    import cv2

    h, w = a.shape[:2]
    f = long_side / max(h, w)
    if f >= 1:
        return a
    return cv2.resize(a, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)


def _read_dicom(name: str) -> tuple[np.ndarray, str]:
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise InputError(name, "DICOM test file not found; install pydicom-data (pip install 'evlf[sample-data]')")
    ds = pydicom.dcmread(path)
    return ds.pixel_array, str(ds.get("PhotometricInterpretation", "MONOCHROME2"))


@lru_cache(maxsize=None)
def _background(modality: str) -> np.ndarray:
    """The source image as float32 in [0, 1]: HxW for grayscale, HxWx3 for colour."""
    if modality in ("CT", "MR", "CR"):
        name = {"CT": "CT_small.dcm", "MR": "MR_small.dcm", "CR": "RG1_UNCR.dcm"}[modality]
        pixels, photometric = _read_dicom(name)
        img = percentile_window(_shrink(pixels.astype(np.float32), 512))
        return 1.0 - img if photometric == "MONOCHROME1" else img
    from skimage import data

    if modality == "fundus":
        img = _shrink(data.retina(), 600).astype(np.float32) / 255.0
        h, w = img.shape[:2]  # keep the lit disc: the corners are black
        return np.ascontiguousarray(img[int(0.17 * h) : int(0.83 * h), int(0.17 * w) : int(0.83 * w)])
    return data.immunohistochemistry().astype(np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    import cv2

    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / max(float(n.std()), 1e-6)


def _crop(rng: np.random.Generator, src: np.ndarray) -> np.ndarray:
    """A random crop (varied aspect), flip and resize to 128-256 px on the long side, with an intensity change."""
    import cv2

    h, w = src.shape[:2]
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.67))))  # width / height
    frac = rng.uniform(0.5, 1.0)
    ch = min(h, int(round(frac * min(h, w / aspect))))
    cw = min(w, int(round(ch * aspect)))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    img = src[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.3:
        img = img[::-1, :]
    long_side = int(rng.integers(128, 257))
    f = long_side / max(ch, cw)
    size = (max(32, round(cw * f)), max(32, round(ch * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    img = cv2.resize(np.ascontiguousarray(img), size, interpolation=interp)
    gamma = float(np.exp(rng.uniform(-0.35, 0.35)))
    gain, offset = rng.uniform(0.8, 1.15), rng.uniform(-0.06, 0.06)
    return np.clip(gain * np.power(np.clip(img, 0, 1), gamma) + offset, 0.0, 1.0).astype(np.float32)


def _shape(rng: np.random.Generator, kind: str, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(mask, amplitude): the lesion's extent and its signed intensity profile before blur and contrast."""
    h, w = hw
    side = min(h, w)
    radius = {"nodule": (0.05, 0.12), "mass": (0.10, 0.22), "cyst": (0.08, 0.17)}[kind]
    r = max(5.0, rng.uniform(*radius) * side)
    aspect = rng.uniform(0.85, 1.18) if kind == "nodule" else rng.uniform(0.65, 1.5)
    rx, ry = r * np.sqrt(aspect), r / np.sqrt(aspect)
    ext = 1.5 * max(rx, ry)
    cy = rng.uniform(ext, h - ext) if h > 2 * ext else h / 2
    cx = rng.uniform(ext, w - ext) if w > 2 * ext else w / 2
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / rx
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ry
    rho = np.sqrt(u * u + v * v)
    if kind == "mass":  # lobulated outline: the radius wobbles with the angle
        phi = np.arctan2(v, u)
        wobble = np.ones_like(phi)
        for k in range(2, 7):
            wobble += rng.uniform(0.04, 0.16) / (k / 2) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:  # spicules
            k = int(rng.integers(7, 13))
            wobble += rng.uniform(0.08, 0.18) * np.maximum(0, np.cos(k * phi + rng.uniform(0, 2 * np.pi))) ** 4
        rho = rho / np.maximum(wobble, 0.3)
    mask = rho <= 1.0
    if kind == "cyst":  # bright rim, fluid-dark lumen
        wall = rng.uniform(0.22, 0.4)
        amplitude = np.where(rho >= 1.0 - wall, 1.0, -rng.uniform(0.3, 0.6)).astype(np.float32)
    else:
        amplitude = np.ones((h, w), np.float32)
    return mask, amplitude * mask


def _paint(rng: np.random.Generator, img: np.ndarray, kind: str, occupied: np.ndarray) -> np.ndarray | None:
    """Draw one lesion into `img` in place and return its mask, or None when no free, lit spot was found."""
    import cv2

    h, w = img.shape[:2]
    gray = img if img.ndim == 2 else img.mean(axis=2)
    for _ in range(25):
        mask, amp = _shape(rng, kind, (h, w))
        if not mask.any():
            continue
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        if (grown & occupied).any() or float(gray[mask].mean()) < 0.08:
            continue
        texture = rng.uniform(0.0, 0.5)
        if texture > 0:
            amp = amp * (1.0 + texture * _smooth_noise(rng, (h, w), rng.uniform(1.0, 3.0)))
        blur = rng.uniform(0.0, 2.5)
        if blur > 0.3:
            amp = cv2.GaussianBlur(amp.astype(np.float32), (0, 0), blur)
        contrast = rng.uniform(0.12, 0.45)
        local = float(gray[mask].mean())  # brighten on dark ground, darken on bright, so it stays visible
        sign = 1.0 if local < 0.3 else -1.0 if local > 0.7 else (1.0 if rng.random() < 0.65 else -1.0)
        delta = sign * contrast * amp
        if img.ndim == 3:  # a tinted change, as stain or haemorrhage would be
            delta = delta[..., None] * rng.uniform(0.6, 1.2, size=3).astype(np.float32)
        painted = np.clip(img + delta, 0.0, 1.0)
        change = np.abs(painted - img)
        if float((change.mean(axis=2) if img.ndim == 3 else change)[mask].mean()) < MIN_VISIBLE:
            continue  # washed out by clipping or blur: try another spot
        img[...] = painted
        return mask
    return None


def _tight_box(mask: np.ndarray) -> list[float]:
    """Half-open pixel extent [x0, y0, x1, y1] of a mask's true pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


@dataclass
class Sample:
    image: np.ndarray  # uint8, HxW or HxWx3
    label: str
    masks: list[np.ndarray]
    modality: str
    clean: np.ndarray  # the same background before lesions and noise (for checks)


def make_sample(seed: int, split: Split, index: int) -> Sample:
    """One case, fully determined by (seed, split, index)."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    modality = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    label = LESION_LABELS[int(rng.integers(len(LESION_LABELS)))]
    img = _crop(rng, _background(modality))
    clean = np.round(img * 255).astype(np.uint8)
    masks: list[np.ndarray] = []
    if label != "normal":
        occupied = np.zeros(img.shape[:2], bool)
        for _ in range(1 if rng.random() < 0.75 else 2):
            mask = _paint(rng, img, label, occupied)
            if mask is not None:
                masks.append(mask)
                occupied |= mask
        if not masks:  # nowhere lit enough: draw it anyway, ignoring brightness
            mask, amp = _shape(rng, label, img.shape[:2])
            img += 0.3 * (amp if img.ndim == 2 else amp[..., None])
            np.clip(img, 0.0, 1.0, out=img)
            masks.append(mask)
    noise = rng.uniform(0.0, 0.02)
    img = np.clip(img + noise * rng.standard_normal(img.shape).astype(np.float32), 0.0, 1.0)
    return Sample(image=np.round(img * 255).astype(np.uint8), label=label, masks=masks, modality=modality, clean=clean)


def _write_split(folder: Path, seed: int, split: Split, count: int) -> None:
    from PIL import Image

    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as out:
        for i in range(count):
            case = f"lesion-{split}-{i:05d}"
            s = make_sample(seed, split, i)
            image_path = f"images/{case}.png"
            Image.fromarray(s.image).save(folder / image_path)
            mask_paths = []
            for k, m in enumerate(s.masks):
                mp = f"masks/{case}-{k}.png"
                Image.fromarray(m.astype(np.uint8) * 255).save(folder / mp)
                mask_paths.append(mp)
            bg = BACKGROUNDS[s.modality]
            record = {
                "id": case,
                "images": [image_path],
                "task": "grounding",
                "question": QUESTION,
                "label": s.label,
                "labels": [s.label],
                "boxes": [_tight_box(m) for m in s.masks],
                "box_labels": [s.label] * len(s.masks),
                "masks": mask_paths,
                "modality": bg.modality,
                "specialty": bg.specialty,
                "source": f"evlf synthetic lesion set {VERSION} (seed {seed}) on {bg.source}",
                "licence": f"lesions: Apache-2.0; background: {bg.licence}",
            }
            out.write(json.dumps(record) + "\n")


def default_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("evlf")) / "lesions"


def _folder_name(seed: int, sizes: dict[str, int]) -> str:
    name = f"{VERSION}-seed{seed}"
    if sizes != DEFAULT_SIZES:
        name += f"-n{sizes['train']}x{sizes['test']}"
    return name


def _complete(folder: Path, seed: int, sizes: dict[str, int]) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("version") == VERSION and manifest.get("seed") == seed and manifest.get("sizes") == sizes


def ensure_lesion_set(
    split: str = "test",
    seed: int = 0,
    root: Path | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Path:
    """The JSONL path of `split`, generating the whole set (both splits) once, atomically, if it is not complete."""
    if split not in _SPLIT_CODE:
        raise InputError(None, f"unknown lesion split {split!r} (known: train, test)")
    sizes = {"train": DEFAULT_SIZES["train"] if n_train is None else n_train,
             "test": DEFAULT_SIZES["test"] if n_test is None else n_test}
    if min(sizes.values()) < 0:
        raise InputError(None, "lesion split sizes must be >= 0")
    base = Path(root) if root is not None else default_root()
    folder = base / _folder_name(seed, sizes)
    if not _complete(folder, seed, sizes):
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=base))
        tmp.chmod(0o755)
        try:
            for name, count in sizes.items():
                _write_split(tmp, seed, name, count)  # type: ignore[arg-type]
            manifest = {"version": VERSION, "seed": seed, "sizes": sizes, "labels": list(LESION_LABELS)}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if folder.exists():  # an incomplete leftover (a complete one would have been used)
                if _complete(folder, seed, sizes):
                    shutil.rmtree(tmp)
                    return folder / f"{split}.jsonl"
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.replace(tmp, folder)
            except OSError:  # another process finished first
                if not _complete(folder, seed, sizes):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return folder / f"{split}.jsonl"

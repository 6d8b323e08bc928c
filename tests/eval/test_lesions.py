"""The seeded lesion set: reproducible, labels consistent, masks agree with boxes in original pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from evlf.core.errors import InputError
from evlf.eval.lesions import LESION_LABELS, ensure_lesion_set, make_sample


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_lesion_set("test", seed=3, root=tmp_path_factory.mktemp("lesions"), n_train=12, n_test=40)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_follow_the_dataset_format(small_set: Path) -> None:
    records = _records(small_set)
    assert len(records) == 40
    assert len({r["id"] for r in records}) == 40
    for r in records:
        assert r["task"] == "grounding"
        assert r["label"] in LESION_LABELS and r["labels"] == [r["label"]]
        assert len(r["boxes"]) == len(r["masks"]) == len(r["box_labels"])
        assert r["modality"] in {"CT", "MR", "CR", "fundus", "pathology"}
        assert r["specialty"] and r["source"] and r["licence"]
        if r["label"] == "normal":
            assert r["boxes"] == [] and r["masks"] == []
        else:
            assert 1 <= len(r["boxes"]) <= 2 and set(r["box_labels"]) == {r["label"]}
    assert {r["label"] for r in records} == set(LESION_LABELS)


def test_masks_match_boxes_in_original_pixels(small_set: Path) -> None:
    folder = small_set.parent
    shapes = set()
    for r in _records(small_set):
        image = np.asarray(Image.open(folder / r["images"][0]))
        h, w = image.shape[:2]
        shapes.add((h, w))
        assert 128 <= max(h, w) <= 256
        for box, mask_path in zip(r["boxes"], r["masks"]):
            mask = np.asarray(Image.open(folder / mask_path)) > 0
            assert mask.shape == (h, w)
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            assert box == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
    assert len({w / h for h, w in shapes}) > 5  # varied size and aspect


def test_lesions_change_the_pixels_they_cover_and_nothing_is_drawn_on_normals() -> None:
    found = {label: 0 for label in LESION_LABELS}
    for i in range(24):
        s = make_sample(5, "test", i)
        found[s.label] += 1
        change = np.abs(s.image.astype(float) - s.clean.astype(float))
        change = change.mean(axis=2) if change.ndim == 3 else change
        drawn = np.zeros(change.shape, bool)
        for m in s.masks:
            drawn |= m
        far = ~binary_dilation(drawn, iterations=6)  # leave out the blurred rim around each lesion
        assert change[far].mean() < 8  # noise only
        if s.label == "normal":
            assert s.masks == []
        else:
            assert change[drawn].mean() > change[far].mean() + 10
    assert all(found.values())


def test_generation_is_deterministic_and_split_independent(tmp_path: Path) -> None:
    a = ensure_lesion_set("test", seed=1, root=tmp_path / "a", n_train=3, n_test=6)
    b = ensure_lesion_set("test", seed=1, root=tmp_path / "b", n_train=9, n_test=6)
    c = ensure_lesion_set("test", seed=2, root=tmp_path / "c", n_train=3, n_test=6)
    assert a.read_text() != c.read_text().replace("seed 2", "seed 1")
    ra, rb = _records(a), _records(b)
    assert [r["boxes"] for r in ra] == [r["boxes"] for r in rb]
    for x, y in zip(ra, rb):
        assert (a.parent / x["images"][0]).read_bytes() == (b.parent / y["images"][0]).read_bytes()
    assert len(_records(a.parent / "train.jsonl")) == 3


def test_a_complete_set_is_reused_and_an_incomplete_one_regenerated(tmp_path: Path) -> None:
    path = ensure_lesion_set("train", seed=0, root=tmp_path, n_train=4, n_test=2)
    stamp = path.stat().st_mtime_ns
    assert ensure_lesion_set("train", seed=0, root=tmp_path, n_train=4, n_test=2).stat().st_mtime_ns == stamp
    (path.parent / "manifest.json").unlink()
    again = ensure_lesion_set("train", seed=0, root=tmp_path, n_train=4, n_test=2)
    assert again == path and len(_records(again)) == 4 and (path.parent / "manifest.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_unknown_split_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown lesion split 'val'"):
        ensure_lesion_set("val", root=tmp_path)

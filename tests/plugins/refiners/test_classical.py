"""The classical refiner: tightens jittered boxes, keeps original pixel coordinates, refuses bad boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evlf.core.errors import ConfigError, InputError
from evlf.core.geometry import iou
from evlf.core.imaging import load_image
from evlf.core.plugins import get_host
from evlf.core.types import Box
from evlf.eval.lesions import ensure_lesion_set
from evlf.plugins.refiners.classical import METHODS, ClassicalRefiner


def test_refined_box_is_the_tight_box_of_the_mask_in_original_pixels(kit) -> None:
    img, mask = kit.disc_image(37, 211, cy=18, cx=150, r=11)  # odd size, wide aspect
    image = kit.loaded(img)
    truth = kit.truth_box(mask)
    loose = Box(x0=133, y0=3, x1=170, y1=35)
    (r,) = ClassicalRefiner().refine(image, [loose])
    m = r.mask.to_array()
    assert m.shape == (37, 211) and (r.mask.height, r.mask.width) == (37, 211)
    assert r.box == kit.truth_box(m)
    assert iou(r.box, truth) > 0.8 > 0.6 > iou(loose, truth)
    assert r.agreement == pytest.approx(iou(loose, r.box))
    assert 0.0 < r.score <= 1.0
    assert (m & mask).sum() / (m | mask).sum() > 0.8


@pytest.mark.parametrize("method", ["auto", "grabcut"])
def test_a_large_crop_is_segmented_at_bounded_resolution_and_its_mask_scaled_back(kit, monkeypatch, method: str) -> None:
    import evlf.plugins.refiners.classical as classical

    img, mask = kit.disc_image(1500, 1300, cy=700, cx=640, r=260, noise=10.0)  # a radiograph-sized lesion
    image = kit.loaded(img)
    truth = kit.truth_box(mask)
    loose = Box(x0=330, y0=420, x1=960, y1=1010)
    seen: list[tuple[int, ...]] = []
    segment = classical._SEGMENT[method]
    monkeypatch.setitem(classical._SEGMENT, method, lambda crop, lay: seen.append(crop.shape) or segment(crop, lay))
    (r,) = ClassicalRefiner(method).refine(image, [loose])
    assert seen and max(seen[0][:2]) == classical.WORK_SIDE  # segmented on the bounded copy, not on 1,500 px
    m = r.mask.to_array()
    assert m.shape == (1500, 1300) and r.box == kit.truth_box(m)
    assert iou(r.box, truth) > 0.9 and (m & mask).sum() / (m | mask).sum() > 0.9


@pytest.mark.parametrize("kind", ["uint16", "hu_int16", "rgb", "float_tall"])
def test_grayscale_16bit_hu_and_colour_images(kit, kind: str) -> None:
    h, w = (180, 60) if kind == "float_tall" else (90, 120)
    img, mask = kit.disc_image(h, w, cy=h * 0.5, cx=w * 0.4, r=min(h, w) * 0.18, seed=2)
    if kind == "uint16":
        px = (img * 150).astype(np.uint16)  # up to ~24000
    elif kind == "hu_int16":
        px = (img * 10 - 1000).astype(np.int16)  # air-like background, soft-tissue lesion
    elif kind == "rgb":
        g = np.clip(img, 0, 255)
        px = np.stack([g, g * 0.8, 255 - g], axis=2).astype(np.uint8)
    else:
        px = img.astype(np.float32)
    truth = kit.truth_box(mask)
    shifted = Box(x0=truth.x0 + 4, y0=truth.y0 - 3, x1=truth.x1 + 7, y1=truth.y1 + 2)
    (r,) = ClassicalRefiner().refine(kit.loaded(px), [shifted])
    assert iou(r.box, truth) > max(0.8, iou(shifted, truth))


def test_all_boxes_of_an_image_in_one_call_and_every_method_runs(kit) -> None:
    img, m1 = kit.disc_image(100, 140, cy=30, cx=35, r=12, seed=3)
    img2, m2 = kit.disc_image(100, 140, cy=65, cx=100, r=16, seed=3)
    image = kit.loaded(np.where(m2, img2, img))
    boxes = [Box(x0=20, y0=15, x1=50, y1=44), Box(x0=80, y0=47, x1=121, y1=84)]
    for method in METHODS:
        out = ClassicalRefiner(method).refine(image, boxes)
        assert len(out) == 2
        assert iou(out[0].box, kit.truth_box(m1)) > 0.5 and iou(out[1].box, kit.truth_box(m2)) > 0.5, method


def test_bad_boxes_and_methods_are_refused_with_a_clear_message(kit) -> None:
    image = kit.loaded(kit.disc_image(50, 60, cy=25, cx=30, r=8)[0], name="scan.png")
    refiner = ClassicalRefiner()
    with pytest.raises(InputError, match=r"scan.png: box 1 \[10, 10, 10, 30\] has zero area"):
        refiner.refine(image, [Box(x0=1, y0=1, x1=9, y1=9), Box(x0=10, y0=10, x1=10, y1=30)])
    with pytest.raises(InputError, match=r"box 0 \[40, 20, 75, 40\] lies outside the 60x50 image"):
        refiner.refine(image, [Box(x0=40, y0=20, x1=75, y1=40)])
    with pytest.raises(ConfigError, match="unknown classical refiner method 'snake'"):
        ClassicalRefiner("snake")
    assert refiner.refine(image, []) == []


def test_a_box_over_the_whole_image_still_refines(kit) -> None:
    img, mask = kit.disc_image(40, 40, cy=20, cx=20, r=9)
    (r,) = ClassicalRefiner().refine(kit.loaded(img), [Box(x0=0, y0=0, x1=40, y1=40)])
    assert iou(r.box, kit.truth_box(mask)) > 0.7


def test_improves_jittered_boxes_on_the_lesion_set(tmp_path) -> None:
    path = ensure_lesion_set("test", seed=11, root=tmp_path, n_train=0, n_test=24)
    rng = np.random.default_rng(0)
    before, after = [], []
    refiner = ClassicalRefiner()
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if not rec["boxes"]:
            continue
        image = load_image(path.parent / rec["images"][0])
        truths = [Box(x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for b in rec["boxes"]]
        jittered = []
        for t in truths:
            dx, dy = rng.normal(0, 0.15, 2) * (t.width, t.height)
            s = float(np.exp(rng.normal(0, 0.25)))
            cx, cy = (t.x0 + t.x1) / 2 + dx, (t.y0 + t.y1) / 2 + dy
            jittered.append(Box(
                x0=max(0, cx - s * t.width / 2), y0=max(0, cy - s * t.height / 2),
                x1=min(image.width, cx + s * t.width / 2), y1=min(image.height, cy + s * t.height / 2),
            ))
        for t, j, r in zip(truths, jittered, refiner.refine(image, jittered)):
            before.append(iou(t, j))
            after.append(iou(t, r.box))
    assert len(after) >= 15
    assert np.mean(after) > np.mean(before) + 0.1


def test_registered_as_plugins() -> None:
    refiners = get_host().registries.refiners
    assert refiners.get("classical") is ClassicalRefiner
    assert refiners.get("sam").__name__ == "SamRefiner"

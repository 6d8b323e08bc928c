"""The SAM refiner on a tiny random SAM built from segment_anything's own classes (untrained: masks are meaningless)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from evlf.core.errors import ConfigError, InputError
from evlf.core.geometry import iou
from evlf.core.types import Box
from evlf.plugins.refiners import sam as sam_module
from evlf.plugins.refiners.sam import SamRefiner, SamSpec
from evlf.plugins.refiners.tv_shim import batched_nms, box_area, import_segment_anything, resize, to_pil_image


def test_segment_anything_imports_and_leaves_no_fake_torchvision_behind() -> None:
    sa = import_segment_anything()
    assert hasattr(sa, "SamPredictor") and "vit_b" in sa.sam_model_registry
    tv = sys.modules.get("torchvision")
    assert tv is None or getattr(tv, "__file__", None)  # only a real torchvision may stay
    if tv is None:  # none here: segment_anything runs on the stand-ins
        from segment_anything.utils import transforms

        assert transforms.resize is resize


def test_shim_functions_behave_like_torchvision() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    idxs = torch.tensor([0, 0, 0, 1])
    assert box_area(boxes).tolist() == [100, 100, 100, 100]
    assert sorted(batched_nms(boxes, scores, idxs, 0.5).tolist()) == [0, 2, 3]  # box 1 overlaps box 0 in its class
    img = resize(to_pil_image(np.zeros((30, 50, 3), np.uint8)), (12, 20))
    assert np.asarray(img).shape == (12, 20, 3)


def _image(kit, h: int = 45, w: int = 130):
    img, mask = kit.disc_image(h, w, cy=h / 2, cx=w / 3, r=10)
    return kit.loaded(img.astype(np.float32)), mask


def test_masks_and_boxes_live_in_original_pixels_of_any_aspect(kit, tiny_sam) -> None:
    refiner = SamRefiner.from_model(tiny_sam, device="cpu")
    for h, w in [(45, 130), (150, 40), (64, 64)]:
        image, _ = _image(kit, h, w)
        boxes = [Box(x0=2, y0=3, x1=w - 5, y1=h - 4), Box(x0=w / 4, y0=h / 4, x1=w / 2, y1=h / 2)]
        out = refiner.refine(image, boxes)
        assert len(out) == 2
        for b, r in zip(boxes, out):
            m = r.mask.to_array()
            assert m.shape == (h, w)
            if m.any():
                assert r.box == kit.truth_box(m) and r.agreement == pytest.approx(iou(b, r.box))
            else:
                assert r.box.area == 0 and r.agreement == 0.0
            assert 0.0 <= r.score <= 1.0


def test_one_encoding_per_image_and_the_cache_serves_a_second_round(kit, tiny_sam) -> None:
    refiner = SamRefiner.from_model(tiny_sam, device="cpu", cache_size=2)
    a, _ = _image(kit, 40, 90)
    b, _ = _image(kit, 41, 90)
    c, _ = _image(kit, 42, 90)
    many = [Box(x0=i, y0=1, x1=i + 20, y1=30) for i in range(0, 60, 3)]
    first = refiner.refine(a, many)
    assert refiner.encodings == 1  # 20 boxes, one encoding
    again = refiner.refine(a, many)
    assert refiner.encodings == 1 and [r.mask for r in again] == [r.mask for r in first]
    refiner.refine(b, many[:1])
    refiner.refine(c, many[:1])  # evicts a (cache of 2)
    assert refiner.encodings == 3
    refiner.refine(a, many[:1])
    assert refiner.encodings == 4


def test_batched_decoding_matches_one_box_at_a_time(kit, tiny_sam) -> None:
    refiner = SamRefiner.from_model(tiny_sam, device="cpu")
    image, _ = _image(kit)
    boxes = [Box(x0=5, y0=5, x1=40, y1=40), Box(x0=60, y0=2, x1=120, y1=30)]
    together = refiner.refine(image, boxes)
    alone = [refiner.refine(image, [b])[0] for b in boxes]
    assert [r.mask for r in together] == [r.mask for r in alone]


def test_checkpoint_loads_through_the_model_type_registry(kit, tiny_sam, tiny_sam_builder, tmp_path, monkeypatch) -> None:
    path = tmp_path / "tiny.pth"
    torch.save({"model": tiny_sam.state_dict()}, path)
    monkeypatch.setitem(sam_module.SAM_BUILDERS, "tiny", SamSpec(lambda: tiny_sam_builder(seed=1)))
    monkeypatch.setitem(sam_module.SAM_BUILDERS, "tiny_medsam", SamSpec(lambda: tiny_sam_builder(seed=1), style="medsam"))
    loaded = SamRefiner(str(path), model_type="tiny", device="cpu")
    image, _ = _image(kit)
    boxes = [Box(x0=10, y0=5, x1=60, y1=40)]
    assert loaded.refine(image, boxes) == SamRefiner.from_model(tiny_sam, device="cpu").refine(image, boxes)
    medsam = SamRefiner(str(path), model_type="tiny_medsam", device="cpu")
    assert medsam.style == "medsam" and medsam.refine(image, boxes)[0].mask.height == image.height


def test_configuration_errors_are_clear(tmp_path, monkeypatch, tiny_sam_builder) -> None:
    with pytest.raises(ConfigError, match="unknown SAM model type 'vit_x'"):
        SamRefiner(str(tmp_path / "x.pth"), model_type="vit_x")
    with pytest.raises(ConfigError, match="SAM checkpoint .*missing.pth not found"):
        SamRefiner(str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setitem(sam_module.SAM_BUILDERS, "tiny", SamSpec(tiny_sam_builder))
    with pytest.raises(ConfigError, match="bad.pth: not a readable SAM checkpoint"):
        SamRefiner(str(bad), model_type="tiny")
    wrong = tmp_path / "wrong.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1)}, wrong)
    with pytest.raises(ConfigError, match="wrong.pth: does not fit SAM model type 'tiny'"):
        SamRefiner(str(wrong), model_type="tiny")


def test_bad_boxes_are_refused(kit, tiny_sam) -> None:
    refiner = SamRefiner.from_model(tiny_sam, device="cpu")
    image, _ = _image(kit)
    with pytest.raises(InputError, match="has zero area"):
        refiner.refine(image, [Box(x0=5, y0=5, x1=20, y1=5)])
    with pytest.raises(InputError, match="lies outside the 130x45 image"):
        refiner.refine(image, [Box(x0=100, y0=5, x1=140, y1=20)])
    assert refiner.encodings == 0  # refused before any encoding


def test_frames_of_one_file_are_encoded_separately(kit, tiny_sam) -> None:
    refiner = SamRefiner.from_model(tiny_sam, device="cpu")
    first, _ = _image(kit, 40, 60)
    second = first.model_copy(update={"frame_index": 1, "rgb": first.rgb[::-1].copy()})
    box = [Box(x0=5, y0=5, x1=30, y1=30)]
    refiner.refine(first, box)
    refiner.refine(second, box)
    assert refiner.encodings == 2


def test_a_working_torchvision_is_used_instead_of_the_stand_ins(tmp_path) -> None:
    """In a fresh process with an importable torchvision (here a fake package on sys.path), segment_anything binds to it."""
    import subprocess

    pkg = tmp_path / "torchvision"
    (pkg / "transforms").mkdir(parents=True)
    (pkg / "ops").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "transforms" / "__init__.py").write_text("")
    (pkg / "transforms" / "functional.py").write_text("def resize(img, size): return 'real'\ndef to_pil_image(x): return x\n")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "ops" / "boxes.py").write_text("def batched_nms(*a): return 'real'\ndef box_area(b): return 'real'\n")
    code = (
        "from evlf.plugins.refiners.tv_shim import import_segment_anything\n"
        "import_segment_anything()\n"
        "from segment_anything.utils import transforms\n"
        "from segment_anything import automatic_mask_generator as amg\n"
        "print(transforms.resize.__module__, amg.batched_nms.__module__)\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["torchvision.transforms.functional", "torchvision.ops.boxes"]

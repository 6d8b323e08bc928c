"""Every family loads from a saved directory (offline) and generates through the transformers backend."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import GenerationRequest, Turn
from evlf.plugins.backends.transformers_backend import TransformersBackend
from evlf.core.errors import ConfigError
from evlf.plugins.backends.families import FAMILIES, family_of
from evlf.plugins.backends.processors import qwen_resize, torchvision_available
from evlf.core.geometry import BoxConvention, BoxCodec
from evlf.core.types import Box

FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_loads_and_generates(family, tiny_dir, image):
    backend = TransformersBackend(str(tiny_dir(family)), max_batch_size=4)
    backend.threads = 1
    assert backend.identity.family == family
    assert backend.identity.trained is False  # the tiny marker travels with the directory
    assert backend.identity.box_convention is FAMILIES[family].box_convention
    assert len(backend.identity.weights_sha256 or "") == 64
    few_shot = [
        Turn(role="user", text="example case", images=[image(40, 30, 1)]),
        Turn(role="assistant", text='<think>x</think><answer>{"diagnosis": "normal", "findings": []}</answer>'),
    ]
    requests = [
        GenerationRequest(system="You are a radiologist.", turns=[*few_shot, Turn(role="user", text="what?", images=[image(64, 48)])], max_new_tokens=8),
        GenerationRequest(turns=[Turn(role="user", text="and this?", images=[image(30, 50, 2)])], max_new_tokens=160, json_schema=answer_json_schema(["a", "b"])),
    ]
    plain, constrained = backend.generate(requests)
    assert plain.tokens_in > 0 and 0 < plain.tokens_out <= 8 * 2 + 200  # a repair may follow the free reply
    assert len(plain.image_sizes) == 1 and len(constrained.image_sizes) == 1
    assert constrained.answer is not None, constrained.text
    assert constrained.answer.diagnosis in ("a", "b")
    assert not constrained.repaired


def test_qwen_without_torchvision_uses_image_only_processor(tiny_dir):
    if torchvision_available():
        pytest.skip("torchvision present: AutoProcessor path is used")
    from transformers import AutoProcessor

    with pytest.raises(Exception):  # what the backend works around
        AutoProcessor.from_pretrained(tiny_dir("qwen2_vl"), local_files_only=True)
    backend = TransformersBackend(str(tiny_dir("qwen2_vl")))
    assert not hasattr(backend.processor, "video_processor") or backend.processor.video_processor is None


@pytest.mark.parametrize("size", [(640, 480), (333, 517), (1000, 90), (28, 28)])
def test_qwen25_boxes_map_back_to_original_pixels_exactly(tiny_dir, image, size):
    """image_sizes is exactly the processor's resized grid, so resized-pixel boxes decode exactly."""
    backend = TransformersBackend(str(tiny_dir("qwen2_5_vl")), repair=False)
    width, height = size
    inputs, sizes = backend.prepare([GenerationRequest(turns=[Turn(role="user", text="q", images=[image(width, height)])])])
    grid = inputs["image_grid_thw"][0].tolist()
    proc = backend.processor.image_processor
    rh, rw = qwen_resize(height, width, factor=proc.patch_size * proc.merge_size, min_pixels=proc.size["shortest_edge"], max_pixels=proc.size["longest_edge"])
    assert sizes[0] == [(grid[2] * proc.patch_size, grid[1] * proc.patch_size)] == [(rw, rh)]
    codec = BoxCodec(BoxConvention.RESIZED_PIXELS, original=size, resized=sizes[0][0])
    assert codec.decode([0, 0, rw, rh]) == Box(x0=0, y0=0, x1=width, y1=height)
    box = Box(x0=width * 0.25, y0=height * 0.5, x1=width * 0.75, y1=height * 0.9)
    back = codec.decode(codec.encode(box))
    assert max(abs(a - b) for a, b in zip((back.x0, back.y0, back.x1, back.y1), (box.x0, box.y0, box.x1, box.y1))) < 1e-9


def test_unsupported_model_type_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a supported VLM family"):
        family_of("bert")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConfigError, match="bert"):
        TransformersBackend(str(tmp_path))


def test_remote_code_internvl_is_explained():
    with pytest.raises(ConfigError, match="convert"):
        family_of("internvl_chat")


def test_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a model directory"):
        TransformersBackend(str(tmp_path / "nope"))


@st.composite
def image_box(draw):
    w = draw(st.integers(1, 4096))
    h = draw(st.integers(max(1, math.ceil(w / 200)), min(4096, w * 200)))  # Qwen's processor refuses aspect ratios over 200
    x0 = draw(st.floats(0, w, allow_nan=False))
    x1 = draw(st.floats(x0, w, allow_nan=False))
    y0 = draw(st.floats(0, h, allow_nan=False))
    y1 = draw(st.floats(y0, h, allow_nan=False))
    return (w, h), Box(x0=x0, y0=y0, x1=x1, y1=y1)


@settings(max_examples=100, deadline=None)  # the first example imports transformers
@given(data=image_box())
def test_qwen25_resized_pixels_map_back_to_original(data):
    (w, h), box = data
    rh, rw = qwen_resize(h, w)
    assert rh % 28 == 0 and rw % 28 == 0
    codec = BoxCodec(BoxConvention.RESIZED_PIXELS, original=(w, h), resized=(rw, rh))
    in_resized = codec.encode(box)
    assert all(0 <= v <= max(rw, rh) + 1e-6 for v in in_resized)
    back = codec.decode(in_resized)
    assert all(math.isclose(u, v, rel_tol=1e-6, abs_tol=1e-5) for u, v in zip(back.as_list(), box.as_list()))


def test_qwen_resize_bounds():
    h, w = qwen_resize(4000, 3000)
    assert h * w <= 14 * 14 * 4 * 1280
    h, w = qwen_resize(10, 10)
    assert h * w >= 56 * 56

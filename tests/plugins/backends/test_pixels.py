"""The batched pixel path and the batched token types hand the model exactly what the processor alone would."""

from __future__ import annotations

import numpy as np
import pytest

from evlf.core.backends.base import GenerationRequest, Turn


def _requests(rng: np.random.Generator, n: int) -> list[GenerationRequest]:
    """Mixed sizes, one repeated size (a group), one image already at the processor's size, a size that comes back
    later in the batch (a group whose images are not next to each other) and a request with two images."""
    shapes = [(40 + 7 * i, 64 - 3 * i) for i in range(n - 2)] + [(64, 64), (56, 56)]
    requests = [
        GenerationRequest(turns=[Turn(role="user", text=f"Describe {i}.", images=[rng.integers(0, 256, (*shape, 3), dtype=np.uint8)])], max_new_tokens=8)
        for i, shape in enumerate(shapes)
    ]
    two = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in (shapes[0], (30, 90))]
    return requests + [GenerationRequest(turns=[Turn(role="user", text="Compare.", images=two)], max_new_tokens=8)]


@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "idefics3"])
def test_prepared_inputs_equal_the_processors_own(family: str, tiny_dir) -> None:
    import torch

    from evlf.plugins.backends.adapter import chat_messages
    from evlf.plugins.backends.pixels import pixel_groups, prepare_pixels
    from evlf.plugins.backends.qwen_batch import qwen_inputs
    from evlf.plugins.backends.tiny import TinyBackend
    from evlf.plugins.backends.transformers_backend import _image_placeholder

    backend = TinyBackend(family, cache_dir=str(tiny_dir(family).parent))
    requests = _requests(np.random.default_rng(3), 6)
    images = [image for r in requests for t in r.turns for image in t.images]
    fast = prepare_pixels(backend.processor.image_processor, images)
    assert (fast is None) == (family == "idefics3")  # image splitting: the processor keeps its own path
    texts = [backend._prompt(chat_messages(r, _image_placeholder, plain_text=False)) for r in requests]
    groups = pixel_groups(backend.processor.image_processor, images)
    assert (groups is not None and qwen_inputs(backend.processor, texts, groups) is not None) == (family == "qwen2_vl")
    assert qwen_inputs(backend.processor, texts[:-1], groups) is None  # placeholders and images that do not pair up
    own = backend.processor(text=texts, images=images, padding=True, return_tensors="pt", input_data_format="channels_last")
    prepared, _ = backend.prepare(requests)
    assert set(prepared.keys()) == set(own.keys())
    for key in own:
        assert torch.equal(prepared[key], own[key]), key


def test_pixels_match_bit_for_bit_and_crop_keeps_the_processors_path(tiny_backend) -> None:
    from transformers import CLIPImageProcessorPil

    from evlf.plugins.backends.pixels import prepare_pixels

    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((31, 77), (90, 45), (31, 77))]
    processor = tiny_backend.processor.image_processor
    pixels, skip = prepare_pixels(processor, images)
    assert skip["do_resize"] is False and all(p.dtype == np.float32 and p.shape[0] == 3 for p in pixels)
    own = processor(images, return_tensors="np", input_data_format="channels_last")
    ours = processor(pixels, return_tensors="np", **skip)
    assert np.array_equal(own["pixel_values"], ours["pixel_values"]) and np.array_equal(own["image_grid_thw"], ours["image_grid_thw"])
    clip = CLIPImageProcessorPil(size={"height": 28, "width": 28}, do_center_crop=False)
    fixed, skip = prepare_pixels(clip, images)
    assert np.array_equal(clip(images, return_tensors="np", input_data_format="channels_last")["pixel_values"], clip(fixed, return_tensors="np", **skip)["pixel_values"])
    assert prepare_pixels(CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}), images) is None


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_rows_decode_as_batch_decode_does(family: str, tiny_dir) -> None:
    from evlf.plugins.backends.processors import decode_rows
    from evlf.plugins.backends.tiny import TinyBackend

    tokenizer = TinyBackend(family, cache_dir=str(tiny_dir(family).parent)).processor.tokenizer
    rng = np.random.default_rng(5)
    rows = [rng.integers(0, len(tokenizer), n).tolist() for n in (0, 1, 17, 64)]
    rows.append(tokenizer("<answer>{\"a\": 1}</answer>  done .")["input_ids"] + [tokenizer.eos_token_id])
    expected = {clean: None for clean in (False, True)}
    for clean in expected:
        tokenizer.clean_up_tokenization_spaces = clean
        expected[clean] = tokenizer.batch_decode(rows, skip_special_tokens=True)
    used: list[bool] = []
    original = type(tokenizer).batch_decode
    try:
        type(tokenizer).batch_decode = lambda self, *a, **k: used.append(True) or original(self, *a, **k)
        for clean, want in expected.items():
            tokenizer.clean_up_tokenization_spaces = clean
            assert decode_rows(tokenizer, rows) == want
    finally:
        type(tokenizer).batch_decode = original
        tokenizer.clean_up_tokenization_spaces = False
    assert used == [True]  # only the clean-up case went through transformers' batch_decode

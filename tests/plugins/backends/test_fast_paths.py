"""The speed paths keep behaviour: arrays to the processor, cached prompts, the reused mask, all-rows masking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evlf.core.errors import ConfigError


def test_rgb_arrays_give_the_processor_the_same_pixels_as_pil_images(tiny_backend) -> None:
    import torch
    from PIL import Image

    from evlf.plugins.backends.transformers_backend import _to_rgb

    rng = np.random.default_rng(1)
    gray, rgba = rng.integers(0, 256, (40, 52), dtype=np.uint8), rng.integers(0, 256, (33, 61, 4), dtype=np.uint8)
    assert _to_rgb(gray).shape == (40, 52, 3) and (_to_rgb(gray)[..., 2] == gray).all()
    assert _to_rgb(rgba).shape == (33, 61, 3) and _to_rgb(rgba).flags["C_CONTIGUOUS"]
    with pytest.raises(ConfigError, match="8-bit"):
        _to_rgb(gray.astype(np.float32))
    images = [_to_rgb(gray), _to_rgb(rgba)]
    processor = tiny_backend.processor.image_processor
    from_pil = processor([Image.fromarray(a) for a in images], return_tensors="pt")
    from_arrays = processor(images, return_tensors="pt", input_data_format="channels_last")
    for key in from_pil:
        assert torch.equal(from_pil[key], from_arrays[key])


def test_prompts_are_rendered_once_and_match_the_template(tiny_backend) -> None:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Any effusion?"}]}]
    other = [{"role": "user", "content": [{"type": "text", "text": "Any nodule?"}]}]
    direct = tiny_backend.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert tiny_backend._prompt(messages) == direct
    assert tiny_backend._prompts[json.dumps(messages, sort_keys=True)] == direct
    assert tiny_backend._prompt(other) != direct and "Any nodule?" in tiny_backend._prompt(other)


def test_mask_over_all_rows_and_a_wider_vocabulary_bans_exactly_the_disallowed() -> None:
    import torch

    from evlf.plugins.backends.constrained import apply_bitmask, pack_tokens

    rng = np.random.default_rng(2)
    allowed = rng.random((2, 64)) < 0.3
    bitmask = np.stack([pack_tokens(a) for a in allowed])
    scores = torch.randn(2, 70)  # the model's head is wider than the packed vocabulary: the extra columns are banned
    out = apply_bitmask(scores.clone(), bitmask, [0, 1])
    assert torch.isinf(out[:, 64:]).all()
    keep = torch.from_numpy(allowed)
    assert torch.isinf(out[:, :64][~keep]).all() and torch.equal(out[:, :64][keep], scores[:, :64][keep])


def test_constrained_rows_reuse_one_mask_across_steps(tiny_backend) -> None:
    from evlf.core.answer import answer_json_schema
    from evlf.core.backends.base import GenerationRequest, Turn

    schema = answer_json_schema(["normal", "effusion"])
    requests = [
        GenerationRequest(turns=[Turn(role="user", text=f"Describe {i}.", images=[np.full((32, 32, 3), 40 * i, np.uint8)])],
                          max_new_tokens=200, json_schema=schema if i != 1 else None)
        for i in range(3)
    ]
    constrained, free = tiny_backend.generate(requests), tiny_backend.generate([requests[1]])
    assert constrained[0].answer is not None and constrained[2].answer is not None
    assert constrained[1].text == free[0].text  # the free row in a mixed batch decodes as it does alone


def test_a_mask_seen_before_is_looked_up_and_decodes_the_same(tiny_backend) -> None:
    from evlf.core.answer import answer_json_schema
    from evlf.core.backends.base import GenerationRequest, Turn
    from evlf.plugins.backends import constrained

    schema = answer_json_schema(["normal", "nodule"])
    request = GenerationRequest(turns=[Turn(role="user", text="Describe.", images=[np.full((32, 32, 3), 90, np.uint8)])],
                                max_new_tokens=200, json_schema=schema)
    grammar_tok = tiny_backend.grammar_tokenizer()
    grammar_tok.clear_disallowed_cache()
    misses = []
    real = constrained.disallowed_tokens

    def counted(*args, **kwargs):
        misses.append(1)
        return real(*args, **kwargs)

    constrained.disallowed_tokens = counted
    try:
        first = tiny_backend.generate([request])[0]
        first_misses = len(misses)
        second = tiny_backend.generate([request])[0]
    finally:
        constrained.disallowed_tokens = real
    assert first.answer is not None and second.text == first.text
    assert 0 < first_misses < first.tokens_out  # masks repeat inside one reply
    assert len(misses) == first_misses  # and a second reply to the schema computes none


def test_the_mask_cache_is_bounded(monkeypatch) -> None:
    from evlf.plugins.backends import constrained

    tok = constrained.GrammarTokenizer.__new__(constrained.GrammarTokenizer)
    tok._disallowed = {}
    monkeypatch.setattr(constrained, "DISALLOWED_CACHE_BYTES", 10 * 100)
    cache = tok.disallowed_cache(100, "cpu")
    cache.update({(bytes([i]), False): None for i in range(10)})
    assert tok.disallowed_cache(100, "cpu") == {}  # full: emptied before the next generation uses it

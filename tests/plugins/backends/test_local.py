"""The tiny/transformers backends as the agents use them: options, batching, repair, identity."""

from __future__ import annotations

import pytest

from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import Generation, GenerationRequest, Turn
from evlf.plugins.backends.openai_backend import OpenAIBackend
from evlf.plugins.backends.tiny import TinyBackend, tiny_model_dir
from evlf.plugins.backends.transformers_backend import TransformersBackend
from evlf.core.errors import ConfigError
from evlf.core.plugins import get_host


def test_backends_are_registered_by_name():
    backends = get_host().registries.backends
    assert backends.get("tiny") is TinyBackend
    assert backends.get("transformers") is TransformersBackend
    assert backends.get("openai") is OpenAIBackend


@pytest.mark.parametrize(
    ("cls", "args"),
    [(TinyBackend, {}), (TransformersBackend, {"model": "/nowhere"}), (OpenAIBackend, {"model": "m", "endpoint": "http://127.0.0.1:1/v1"})],
)
def test_unknown_options_are_named(cls, args):
    with pytest.raises(ConfigError, match="colour, temprature"):
        cls(**args, temprature=0.1, colour="red")


def test_registering_backends_imports_no_model_library():
    import subprocess
    import sys

    code = "import sys, evlf.plugins.backends.transformers_backend, evlf.plugins.backends.openai_backend, evlf.plugins.backends.tiny, evlf.plugins.backends.demo; print(sorted(m for m in ('torch', 'transformers', 'llguidance', 'openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_family_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown model family 'gpt'"):
        TinyBackend("gpt", cache_dir=str(tmp_path))


def test_tiny_identity_is_untrained(tiny_backend):
    identity = tiny_backend.identity
    assert identity.trained is False and identity.name == "tiny-qwen2_vl" and identity.family == "qwen2_vl"
    assert identity.box_convention.value == "grid_1000"


def test_tiny_model_is_cached_on_disk(tiny_dir):
    path = tiny_dir("qwen2_vl")
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert tiny_model_dir("qwen2_vl", cache_dir=str(path.parent)) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_batch_keeps_order_and_reports_sizes(tiny_backend, image):
    schema = answer_json_schema(["left", "right"])
    requests = [
        GenerationRequest(turns=[Turn(role="user", text=f"case {i}", images=[image(20 + 30 * i, 40, i)])], max_new_tokens=120 + 40 * (i % 2), json_schema=schema)
        for i in range(5)
    ]
    requests.append(GenerationRequest(turns=[Turn(role="user", text="two views", images=[image(30, 30), image(90, 30)])], max_new_tokens=120, json_schema=schema))
    out = tiny_backend.generate(requests)
    assert len(out) == 6 and all(isinstance(g, Generation) for g in out)
    direct = [tiny_backend.prepare([r])[1][0] for r in requests]
    assert [g.image_sizes for g in out] == direct
    assert len(out[-1].image_sizes) == 2 and out[-1].image_sizes[0] != out[-1].image_sizes[1]
    assert all(g.answer is not None and g.answer.diagnosis in ("left", "right") for g in out)
    assert all(g.tokens_in > 0 and g.latency_ms > 0 for g in out)


def test_unparsable_reply_keeps_raw_text_then_one_repair(tiny_dir, image):
    cache = str(tiny_dir("qwen2_vl").parent)
    request = GenerationRequest(turns=[Turn(role="user", text="free text", images=[image(30, 30)])], max_new_tokens=12)
    plain = TinyBackend(cache_dir=cache, repair=False).generate([request])[0]
    assert plain.answer is None and plain.error and plain.text  # untrained noise, kept as is
    repaired = TinyBackend(cache_dir=cache).generate([request])[0]
    assert repaired.repaired and repaired.answer is not None  # the repair turn is decoded under the schema
    assert repaired.tokens_out > plain.tokens_out and repaired.image_sizes == plain.image_sizes


def test_same_seed_same_sample(tiny_backend, image):
    request = GenerationRequest(turns=[Turn(role="user", text="x", images=[image(30, 30)])], max_new_tokens=40, temperature=1.0, seed=7)
    first, second = tiny_backend.generate([request]), tiny_backend.generate([request])
    assert first[0].text == second[0].text


def test_bad_image_is_a_config_error(tiny_backend):
    import numpy as np

    request = GenerationRequest(turns=[Turn(role="user", text="x", images=[np.zeros((8, 8, 3), dtype=np.uint16)])])
    with pytest.raises(ConfigError, match="8-bit"):
        tiny_backend.generate([request])

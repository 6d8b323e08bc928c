"""The shipped demo model: registered as `demo`, labelled as the demo model, and answering in the EVLF format."""

import json

import numpy as np
import pytest
from PIL import Image

from evlf.core.backends.base import GenerationRequest, Turn
from evlf.core.plugins import get_host
from evlf.plugins.backends.demo import DEMO_MODEL_DIR, DEMO_MODEL_NAME, DemoBackend
from evlf.training.examples import build_examples


def test_weights_ship_small_with_a_model_card():
    weights = DEMO_MODEL_DIR / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 25 * 2**20
    card = (DEMO_MODEL_DIR / "MODEL_CARD.md").read_text()
    assert "Synthetic lesions only" in card and "Not for clinical use" in card
    result = json.loads((DEMO_MODEL_DIR / "training_result.json").read_text())
    assert set(result["held_out"]) == {"sft", "sft+grpo"}


@pytest.fixture(scope="module")
def demo():
    backend = get_host().registries.backends.get("demo")()
    yield backend
    backend.close()


def test_demo_is_registered_and_labelled(demo):
    assert isinstance(demo, DemoBackend)
    ident = demo.identity
    assert ident.name == DEMO_MODEL_NAME and "not-for-clinical-use" in ident.name
    assert ident.trained is True and ident.family == "llava" and ident.weights_sha256


def test_demo_answers_in_the_evlf_format(demo, lesions):
    """Given the request the graph sends (its specialty prompt), as it was trained on."""
    ex = build_examples(lesions, prompts="pipeline")[0]
    image = np.asarray(Image.open(ex.image_paths[0]).convert("RGB"))
    request = GenerationRequest(system=ex.system, turns=[Turn(role="user", text=ex.user, images=[image])],
                                max_new_tokens=192)
    [reply] = demo.generate([request])
    assert reply.error is None, reply.text
    assert reply.answer is not None and reply.answer.diagnosis in {"nodule", "mass", "cyst", "normal"}
    assert reply.model.name == DEMO_MODEL_NAME

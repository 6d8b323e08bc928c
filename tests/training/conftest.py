"""A tiny lesion set and a tiny LLaVA-style model, built once per session."""

from pathlib import Path

import pytest

from evlf.training.tiny_vlm import TinyVlmConfig

TINY = TinyVlmConfig(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                     text_hidden=64, text_layers=2, text_heads=2, text_intermediate=128, vocab_size=512)


@pytest.fixture(scope="session")
def lesions(tmp_path_factory) -> Path:
    from evlf.eval.lesions import ensure_lesion_set

    root = tmp_path_factory.mktemp("lesions")
    return ensure_lesion_set("train", seed=0, root=root, n_train=6, n_test=2)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, lesions) -> Path:
    from evlf.training.examples import answer_corpus, build_examples
    from evlf.training.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("base"), answer_corpus(build_examples(lesions)), TINY, seed=0)

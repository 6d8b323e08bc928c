"""Tiny random models of each family, built once per test session into a tmp dir."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """family name -> a saved tiny model directory (built on first request)."""
    from evlf.plugins.backends.tiny import tiny_model_dir

    root = tmp_path_factory.mktemp("tiny-models")
    return lambda family: tiny_model_dir(family, cache_dir=str(root))


@pytest.fixture(scope="session")
def tiny_backend(tiny_dir: Callable[[str], Path]):
    from evlf.plugins.backends.tiny import TinyBackend

    return TinyBackend("qwen2_vl", cache_dir=str(tiny_dir("qwen2_vl").parent))


def noise_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.fixture
def image() -> Callable[..., np.ndarray]:
    return noise_image

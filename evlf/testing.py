"""Test kit for plugin authors (a pytest plugin): fake images and studies, a temporary plugin.

Enable it in your conftest.py with `pytest_plugins = ["evlf.testing"]`, then:

    def test_routes(register_plugin, fake_image, fake_study):
        register_plugin(my_plugin_module)
        img = fake_image(modality="CT", body_part="LIVER")
        assert route(fake_study(), [img]).chosen == ["my-specialty"]

The functions `make_image` and `make_study` work without pytest too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evlf.core.plugins import PluginHost, get_host, reset_host
from evlf.core.types import ImageMeta, LoadedImage, Study


def _smooth_noise(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """Spatially structured random pixels (a blurred field), so the image is not mistaken for noise."""
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, height // 16), max(2, width // 16), channels))
    ys = np.linspace(0, small.shape[0] - 1, height).round().astype(int)
    xs = np.linspace(0, small.shape[1] - 1, width).round().astype(int)
    return small[ys][:, xs]


def make_image(
    width: int = 64,
    height: int = 64,
    *,
    color: bool = False,
    pixels: np.ndarray | None = None,
    path: str | Path = "fake.png",
    seed: int = 0,
    **meta: Any,
) -> LoadedImage:
    """A LoadedImage built in memory; `meta` fills ImageMeta (modality="CT", body_part="CHEST", laterality="R", ...)."""
    if pixels is None:
        field = _smooth_noise(height, width, 3 if color else 1, seed)
        pixels = (field * 255).astype(np.uint8)
        if not color:
            pixels = pixels[..., 0]
    pixels = np.asarray(pixels)
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        lo, hi = float(pixels.min()), float(pixels.max())
        gray = ((pixels - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)
        rgb = np.stack([gray] * 3, axis=-1)
    else:
        rgb = pixels[..., :3].astype(np.uint8)
    meta.setdefault("bits_stored", int(pixels.dtype.itemsize * 8))
    meta.setdefault("samples_per_pixel", 1 if pixels.ndim == 2 else pixels.shape[2])
    return LoadedImage(
        path=Path(path),
        format="fake",
        width=width,
        height=height,
        sha256=hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
        meta=ImageMeta(**meta),
        pixels=pixels,
        rgb=rgb,
    )


def make_study(paths: list[str | Path] | None = None, **kwargs: Any) -> Study:
    """A Study over (possibly non-existent) paths; kwargs go to Study (task, question, specialty, metadata)."""
    return Study.from_paths(list(paths or ["fake.png"]), **kwargs)


@pytest.fixture
def evlf_host() -> Iterator[PluginHost]:
    """A fresh process-wide plugin host (honouring EVLF_* variables set before use), discarded afterwards."""
    reset_host()
    yield get_host()
    reset_host()


@pytest.fixture
def register_plugin(evlf_host: PluginHost) -> Iterator[Callable[..., str]]:
    """Register a plugin (module, class or object with @hookimpl functions) for one test."""
    names: list[str] = []

    def register(plugin: Any, name: str | None = None, version: str = "0") -> str:
        key = evlf_host.register(plugin, name=name, version=version)
        names.append(key)
        return key

    yield register
    for key in names:
        if evlf_host.pm.has_plugin(key):
            evlf_host.unregister(key)


@pytest.fixture
def fake_image() -> Callable[..., LoadedImage]:
    """Factory: `fake_image(width, height, color=..., modality=..., body_part=...)`."""
    return make_image


@pytest.fixture
def fake_study() -> Callable[..., Study]:
    """Factory: `fake_study(task="grounding", metadata={"modality": "CT"})`."""
    return make_study

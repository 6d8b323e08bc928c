"""The built-in embedders: registered through the plugin hook, batched, unit-norm, identified by id and version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evlf.core.errors import ConfigError
from evlf.core.imaging import load_image
from evlf.core.plugins import PluginHost
from evlf.core.types import LoadedImage


def _image(rgb: np.ndarray) -> LoadedImage:
    return LoadedImage(path=Path("x.png"), format="png", width=rgb.shape[1], height=rgb.shape[0], sha256="0" * 64, pixels=rgb, rgb=rgb)


def test_registered_through_the_hook():
    host = PluginHost(load_entry_points=False)
    names = host.registries.embedders.names()
    assert {"efficientnet-lite0", "hf-vision"} <= set(names)
    assert host.registries.embedders.plugin_of("efficientnet-lite0") == "evlf.plugins.embedders"


@pytest.fixture(scope="module")
def effnet():
    from evlf.plugins.embedders.efficientnet import EfficientNetLite0Embedder

    return EfficientNetLite0Embedder(batch_size=2)


def test_efficientnet_real_weights_batched_and_normalised(effnet):
    import skimage

    data = Path(skimage.__file__).parent / "data"
    images = [load_image(data / name) for name in ("retina.jpg", "ihc.png", "camera.png")]
    vecs = effnet.embed(images)
    assert vecs.shape == (3, 1280) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert (vecs >= -1e-6).mean() > 0.5  # pooled swish activations: mostly non-negative, as real features are
    alone = effnet.embed(images[1:2])
    assert np.allclose(alone[0], vecs[1], atol=1e-4)  # batching does not change a vector (eval-mode batch norm)
    assert effnet.id == "efficientnet-lite0@imagenet-57934424"
    assert effnet.embed([]).shape == (0, 1280)


def test_efficientnet_knows_imagenet(effnet):
    """Loaded weights are the trained ones: the ImageNet head calls the cat photo a cat (classes 281-285)."""
    import torch
    from skimage import data

    from evlf.plugins.embedders.efficientnet import _square_resize

    model = effnet._load()
    x = (_square_resize(data.chelsea(), 224).astype(np.float32) - 127.0) / 128.0
    with torch.inference_mode():
        top = int(model(torch.from_numpy(x).permute(2, 0, 1)[None]).argmax())
    assert 281 <= top <= 285


def test_hf_vision_local_model(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    from evlf.plugins.embedders.hf_vision import HFVisionEmbedder

    cfg = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=8)
    ViTModel(cfg).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    emb = HFVisionEmbedder(tmp_path, batch_size=2)
    assert emb.dim == 32 and emb.id.startswith("hf-vision@")
    rng = np.random.default_rng(0)
    vecs = emb.embed([_image(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)) for _ in range(3)])
    assert vecs.shape == (3, 32) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="config.json"):
        HFVisionEmbedder(tmp_path / "missing")

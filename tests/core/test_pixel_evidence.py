"""The pixel measurements routing reads: the elementwise channel max/min/mean give what numpy's axis reductions give."""

from __future__ import annotations

import numpy as np
import pytest

from evlf.core.pixel_evidence import _measure_pixels, _thumbnail


@pytest.mark.parametrize("shape", [(64, 48, 3), (900, 500, 3), (130, 70)])
def test_measurements_match_the_reductions_over_the_channel_axis(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, shape, dtype=np.uint8)
    if len(shape) == 3:
        rgb[: shape[0] // 2, :, 1] = rgb[: shape[0] // 2, :, 0]  # part grey, part colour
    facts = _measure_pixels(rgb, "RGB")
    thumb = _thumbnail(rgb if rgb.ndim == 3 else np.stack([rgb] * 3, axis=-1))
    chroma = thumb.max(axis=2) - thumb.min(axis=2)
    assert facts["colour_fraction"] == float((chroma > 0.08).mean())
    assert facts["dark_fraction"] == float((thumb.max(axis=2) < 0.2).mean())
    assert facts["white_fraction"] == float((thumb.min(axis=2) > 0.8).mean())
    gray = thumb.mean(axis=2)
    a, b = gray[:, :-1].ravel(), gray[:, 1:].ravel()
    assert facts["structure"] == pytest.approx(float(np.corrcoef(a, b)[0, 1]), abs=1e-12)

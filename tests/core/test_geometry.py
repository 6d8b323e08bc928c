"""Box geometry and the VLM coordinate codecs: exact round trips, clipping, IoU."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evlf.core.geometry import BoxCodec, BoxConvention, clip, inside, iou, scale
from evlf.core.types import Box

sizes = st.tuples(st.integers(1, 4096), st.integers(1, 4096))


@st.composite
def box_in(draw, size=None):
    w, h = size if size is not None else draw(sizes)
    x0 = draw(st.floats(0, w, allow_nan=False))
    x1 = draw(st.floats(x0, w, allow_nan=False))
    y0 = draw(st.floats(0, h, allow_nan=False))
    y1 = draw(st.floats(y0, h, allow_nan=False))
    return (w, h), Box(x0=x0, y0=y0, x1=x1, y1=y1)


def close(a: Box, b: Box, tol: float = 1e-6) -> bool:
    return all(math.isclose(u, v, rel_tol=tol, abs_tol=tol * 10) for u, v in zip(a.as_list(), b.as_list()))


@settings(max_examples=200)
@given(data=box_in(), conv=st.sampled_from(list(BoxConvention)), resized=sizes)
def test_codec_round_trip_is_exact(data, conv, resized):
    size, box = data
    codec = BoxCodec(conv, original=size, resized=resized)
    assert close(codec.decode(codec.encode(box)), box)


def test_grid_1000_decodes_known_values():
    codec = BoxCodec(BoxConvention.GRID_1000, original=(640, 480))
    box = codec.decode([500, 250, 1000, 750], image_index=2)
    assert box.as_list() == [320.0, 120.0, 640.0, 360.0]
    assert box.image_index == 2


def test_unit_decode_clips_and_orders_corners():
    codec = BoxCodec(BoxConvention.UNIT, original=(100, 50))
    box = codec.decode([1.2, 0.8, -0.1, 0.2])
    assert box.as_list() == [0.0, 10.0, 100.0, 40.0]


def test_resized_convention_needs_the_resized_size():
    with pytest.raises(ValueError, match="resized"):
        BoxCodec(BoxConvention.RESIZED_PIXELS, original=(10, 10)).decode([0, 0, 1, 1])


def test_decode_rejects_wrong_arity_and_nan():
    codec = BoxCodec(BoxConvention.UNIT, original=(10, 10))
    with pytest.raises(ValueError):
        codec.decode([0, 0, 1])
    with pytest.raises(ValueError):
        codec.decode([0, 0, float("nan"), 1])


def test_iou_hand_computed():
    a = Box(x0=0, y0=0, x1=10, y1=10)
    b = Box(x0=5, y0=5, x1=15, y1=15)
    assert iou(a, b) == pytest.approx(25 / 175)
    assert iou(a, a) == 1.0
    assert iou(a, Box(x0=20, y0=20, x1=30, y1=30)) == 0.0
    assert iou(Box(x0=1, y0=1, x1=1, y1=5), a) == 0.0


@given(a=box_in(size=(100, 100)), b=box_in(size=(100, 100)))
def test_iou_is_symmetric_and_bounded(a, b):
    v = iou(a[1], b[1])
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(iou(b[1], a[1]))


@given(data=box_in(), dst=sizes)
def test_scale_round_trip(data, dst):
    size, box = data
    assert close(scale(scale(box, size, dst), dst, size), box)


def test_clip_and_inside():
    box = Box(x0=-5, y0=2, x1=120, y1=30)
    assert not inside(box, (100, 50))
    clipped = clip(box, (100, 50))
    assert clipped.as_list() == [0.0, 2.0, 100.0, 30.0]
    assert inside(clipped, (100, 50))

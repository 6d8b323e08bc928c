"""Fuzzing the loader: mutated real files either load or raise InputError, quietly and quickly.

Seeds are real files: pydicom's test data (several transfer syntaxes),
scikit-image pictures saved as PNG, JPEG, TIFF and BMP, and a small NIfTI.
Hypothesis mutates their bytes (flips, overwrites with boundary integers,
cuts, insertions), biased to the headers where the parsers live. The run is
derandomised (the same examples every time, so CI is stable) and bounded:
a fixed number of examples, each under an alarm, with a small memory budget.
"""

from __future__ import annotations

import io
import signal
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evlf.core.errors import InputError
from evlf.core.imaging import load_image

pydicom_data = pytest.importorskip("pydicom.data")
skdata = pytest.importorskip("skimage.data")

DICOM_SEEDS = ("CT_small.dcm", "MR_small.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm", "emri_small.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm")

#: Seconds one load may take before it counts as a hang.
HANG_SECONDS = 10

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def _raster_seeds() -> dict[str, bytes]:
    out = {}
    camera = skdata.camera()[::4, ::4]
    colour = skdata.astronaut()[::8, ::8]
    for name, pixels, fmt in (
        ("gray.png", camera, "PNG"),
        ("colour.png", colour, "PNG"),
        ("gray16.png", camera.astype(np.uint16) * 257, "PNG"),
        ("colour.jpg", colour, "JPEG"),
        ("gray.tif", camera, "TIFF"),
        ("colour.bmp", colour, "BMP"),
    ):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        out[name] = buf.getvalue()
    return out


def _nifti_seed() -> dict[str, bytes]:
    nib = pytest.importorskip("nibabel")
    volume = np.random.default_rng(0).normal(size=(16, 12, 5)).astype(np.float32)
    return {"volume.nii": nib.Nifti1Image(volume, np.diag([1.0, 1.2, 3.0, 1.0])).to_bytes()}


def _seeds() -> dict[str, bytes]:
    seeds = {name: Path(pydicom_data.get_testdata_file(name)).read_bytes() for name in DICOM_SEEDS}
    return seeds | _raster_seeds() | _nifti_seed()


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        size = len(data)
        if size < 2:
            break
        at = draw(st.one_of(st.integers(0, min(size, 1024) - 1), st.integers(0, size - 1)))  # headers first
        kind = draw(st.sampled_from(("flip", "integer", "bytes", "cut", "insert")))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "integer":
            value = draw(st.sampled_from(INTERESTING))
            fmt = draw(st.sampled_from(("<I", ">I", "<H", ">H")))
            packed = struct.pack(fmt, value & (0xFFFF if fmt.endswith("H") else 0xFFFFFFFF))
            data[at : at + len(packed)] = packed
        elif kind == "bytes":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return name, bytes(data)


@pytest.fixture
def alarm() -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"a load took over {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hang)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(case=mutated())
def test_mutated_files_load_or_raise_input_error(
    case: tuple[str, bytes], tmp_path: Path, alarm: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVLF_MAX_IMAGE_BYTES", str(64 * 2**20))  # a mutated size must not cost the suite gigabytes
    name, data = case
    path = tmp_path / f"mutated-{name}"
    path.write_bytes(data)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = load_image(path)
        except InputError as exc:
            message = str(exc)
            assert str(path) in message and "\n" not in message, message
        else:
            assert image.rgb.dtype == np.uint8 and image.rgb.shape == (image.height, image.width, 3)
            assert image.pixels.shape[:2] == (image.height, image.width)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert capfd.readouterr().err == ""  # nor anything a library logs or prints

"""Malformed headers, memory budgets, Pillow's guard, quiet decoders, transfer syntaxes, NIfTI orientation.

Each test reproduces a finding of the hardening probe on real files from
registry packages (pydicom's test data), edited byte by byte here.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from evlf.core.errors import InputError
from evlf.core.imaging import load_image, open_rgb_image


def dicom(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing: install pydicom-data"
    return Path(path)


def ct_with(path: Path, **elements: tuple[str, object]) -> Path:
    """CT_small.dcm with elements added through pydicom (valid values, to be edited as bytes)."""
    ds = pydicom.dcmread(dicom("CT_small.dcm"))
    for keyword, (vr, value) in elements.items():
        ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, value)
    ds.save_as(path)
    return path


def patch_element(path: Path, tag: tuple[int, int], vr: bytes, value: bytes) -> Path:
    """Replace one explicit-VR element's value bytes (and its length), leaving the rest of the file intact."""
    raw = bytearray(path.read_bytes())
    at = raw.index(struct.pack("<HH", *tag) + vr)
    (length,) = struct.unpack_from("<H", raw, at + 6)
    raw[at + 6 : at + 8 + length] = struct.pack("<H", len(value)) + value
    path.write_bytes(bytes(raw))
    return path


def one_line_error(path: Path, match: str) -> str:
    with pytest.raises(InputError) as err:
        load_image(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message, message
    assert "\\x" not in message and "b'" not in message, message  # no raw file bytes
    assert match in message, message
    return message


# ---- malformed header values -------------------------------------------------


def test_number_of_frames_that_is_not_a_number(tmp_path: Path) -> None:
    path = patch_element(ct_with(tmp_path / "f.dcm", NumberOfFrames=("IS", "1")), (0x28, 0x08), b"IS", b"ab")
    one_line_error(path, "malformed NumberOfFrames")


def test_malformed_rows_names_the_element_not_its_bytes(tmp_path: Path) -> None:
    path = patch_element(ct_with(tmp_path / "r.dcm"), (0x28, 0x10), b"US", b"\x80\x01\xfe")
    one_line_error(path, "malformed Rows")


def test_pixel_spacing_with_one_value_means_uncalibrated(tmp_path: Path) -> None:
    path = patch_element(ct_with(tmp_path / "s.dcm"), (0x28, 0x30), b"DS", b"0.5 ")
    image = load_image(path)
    assert image.meta.pixel_spacing is None and image.pixels.shape == (128, 128)


def test_a_window_center_string_falls_back_to_the_percentile_window(tmp_path: Path) -> None:
    path = ct_with(tmp_path / "w.dcm", WindowCenter=("LO", "WINDOW"), WindowWidth=("DS", "400"))
    image = load_image(path)
    plain = load_image(dicom("CT_small.dcm"))
    assert np.array_equal(image.rgb, plain.rgb)  # the unusable window is ignored


def test_a_valid_window_goes_through_pydicom_voi_lut(tmp_path: Path) -> None:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    path = ct_with(tmp_path / "w.dcm", WindowCenter=("DS", "40"), WindowWidth=("DS", "400"))
    image = load_image(path)
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    expected = apply_voi_lut(hu, ds)  # pydicom's LINEAR window, output in the stored range
    lo, hi = float(expected.min()), float(expected.max())
    assert image.rgb[..., 0][expected <= lo].max() == 0 and image.rgb[..., 0][expected >= hi].min() == 255
    assert np.corrcoef(image.rgb[..., 0].ravel(), expected.ravel())[0, 1] > 0.999


def test_truncated_dicom_says_truncated(tmp_path: Path) -> None:
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(dicom("CT_small.dcm").read_bytes()[:1000])
    message = one_line_error(cut, "truncated")
    assert "holds no image" not in message


# ---- transfer syntaxes ---------------------------------------------------------


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"])
def test_transfer_syntaxes_pydicom_reads_are_read(name: str) -> None:
    image = load_image(dicom(name))
    ds = pydicom.dcmread(dicom(name))
    assert image.pixels.shape == ds.pixel_array.shape[:2] and image.rgb.std() > 0


def test_deflated_dicom_pixels_match_pydicom() -> None:
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(dicom("image_dfl.dcm"))
    assert np.array_equal(load_image(dicom("image_dfl.dcm")).pixels, apply_modality_lut(ds.pixel_array, ds))


# ---- memory budget in bytes, Pillow's guard ------------------------------------


def png_header(path: Path, width: int, height: int, bit_depth: int, colour_type: int) -> Path:
    """A PNG whose header claims a size, with a little data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_a_16_bit_png_at_16384_squared_is_refused_before_decoding(tmp_path: Path) -> None:
    message = one_line_error(png_header(tmp_path / "big.png", 16384, 16384, 16, 0), "too large to decode")
    assert "16 bits" in message


def test_the_byte_budget_counts_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLF_MAX_IMAGE_BYTES", str(600 * 2**20))
    one_line_error(png_header(tmp_path / "rgba.png", 9000, 9000, 8, 6), "too large to decode")
    # the same size in one 8-bit sample fits the budget: what fails is the missing data
    one_line_error(png_header(tmp_path / "gray.png", 9000, 9000, 8, 0), "truncated or corrupt PNG")


def test_pillow_guard_stays_on_and_is_raised_only_for_evlf_budgeted_opens(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    # 200 Mpx: beyond Pillow's bomb error (2 x 89 Mpx), inside evlf's 256 Mpx pixel budget
    path = png_header(tmp_path / "wide.png", 20000, 10000, 8, 0)
    one_line_error(path, "truncated or corrupt PNG")  # evlf's own checks decide, not Pillow's bomb error
    load_image(dicom("CT_small.dcm"))
    assert Image.MAX_IMAGE_PIXELS == before
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)  # raw Pillow elsewhere in the process keeps its guard


def test_open_rgb_image_applies_the_same_guards(tmp_path: Path) -> None:
    image = open_rgb_image(dicom("CT_small.dcm"))
    assert (image.mode, image.size) == ("RGB", (128, 128))
    with pytest.raises(InputError, match="too large to decode"):
        open_rgb_image(png_header(tmp_path / "big.png", 16384, 16384, 16, 0))


# ---- no library chatter ----------------------------------------------------------


def test_malformed_files_print_nothing_and_warn_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    nib = pytest.importorskip("nibabel")
    nifti = bytearray(nib.Nifti1Image(np.ones((8, 8, 3), np.float32), np.eye(4)).to_bytes())
    nifti[0:4] = struct.pack("<i", 1372)  # nibabel logs "sizeof_hdr should be 348" to stderr
    (tmp_path / "v.nii").write_bytes(bytes(nifti))
    bad_vr = dicom("badVR.dcm")  # pydicom warns "Invalid value for VR" on it
    files = [bad_vr, dicom("MR_truncated.dcm"), patch_element(ct_with(tmp_path / "s.dcm"), (0x28, 0x30), b"DS", b"x1\\2")]
    files.append(tmp_path / "v.nii")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in files:
            try:
                load_image(path)
            except InputError:
                pass
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""


# ---- NIfTI orientation -------------------------------------------------------------


def test_two_voxel_orders_of_one_anatomy_render_the_same(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(20, 30, 9)).astype(np.float32)
    volume[2:6, 22:27, :] += 8.0  # a bright block on the patient's left (low x), anterior (high y)
    ras = np.diag([0.5, 0.7, 2.0, 1.0])
    nib.save(nib.Nifti1Image(volume, ras), tmp_path / "ras.nii.gz")
    # the same anatomy stored posterior-to-anterior rows first, right-to-left columns (axes swapped, both flipped)
    other = volume[::-1, ::-1, :].transpose(1, 0, 2).copy()
    affine = np.array([[0, -0.5, 0, 0.5 * 19], [-0.7, 0, 0, 0.7 * 29], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(other, affine), tmp_path / "swapped.nii.gz")
    a, b = load_image(tmp_path / "ras.nii.gz"), load_image(tmp_path / "swapped.nii.gz")
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.rgb, b.rgb)
    assert a.meta.pixel_spacing == b.meta.pixel_spacing
    # radiological display: anterior at the top, the patient's left on the image's right
    rows, cols = np.nonzero(a.pixels > 5)
    assert rows.max() < a.height // 2 and cols.min() > a.width // 2


@pytest.mark.parametrize("suffix", ["tif", "png"])
def test_images_beyond_pillows_guard_but_inside_evlfs_budget_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's error at 2000 px: a 64 x 64 page is a "bomb"
    path = tmp_path / f"pages.{suffix}"
    pages = [Image.fromarray(np.full((64, 64), 40 * n, np.uint8)) for n in range(3)]
    pages[0].save(path, save_all=suffix == "tif", append_images=pages[1:] if suffix == "tif" else [])
    image = load_image(path, frame=0 if suffix == "png" else 2)
    assert image.pixels.shape == (64, 64) and int(image.pixels[0, 0]) == (0 if suffix == "png" else 80)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)

"""Image ingest on real files from registry packages and on malformed files made here."""

import struct

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from evlf.core.errors import InputError
from evlf.core.imaging import load_image


def dicom(name):
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing: install pydicom-data"
    return path


def test_ct_small_keeps_hounsfield_units():
    im = load_image(dicom("CT_small.dcm"))
    assert (im.format, im.width, im.height, im.meta.modality) == ("dicom", 128, 128, "CT")
    assert im.pixels.shape == (128, 128)
    assert im.pixels.min() < 0  # rescale intercept applied: air and fat are negative HU
    assert im.rgb.shape == (128, 128, 3) and im.rgb.dtype == np.uint8
    assert im.meta.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert im.meta.study_uid


def test_mr_small():
    im = load_image(dicom("MR_small.dcm"))
    assert (im.width, im.height, im.meta.modality, im.meta.photometric) == (64, 64, "MR", "MONOCHROME2")


def test_monochrome1_chest_radiograph_is_inverted():
    im = load_image(dicom("RG1_UNCR.dcm"))
    assert (im.meta.modality, im.meta.body_part, im.meta.photometric) == ("CR", "CHEST", "MONOCHROME1")
    assert im.pixels.dtype == np.uint16
    # MONOCHROME1: high stored values are dark. The brightest stored pixels must render darkest.
    high = im.pixels >= np.percentile(im.pixels, 99)
    low = im.pixels <= np.percentile(im.pixels, 1)
    assert im.rgb[..., 0][high].mean() < im.rgb[..., 0][low].mean()


def test_ultrasound_rgb():
    im = load_image(dicom("US1_UNCR.dcm"))
    assert im.meta.modality == "US" and im.pixels.shape == (480, 640, 3)


def test_compressed_dicom_decodes_with_pylibjpeg():
    im = load_image(dicom("JPEG2000.dcm"))
    assert (im.width, im.height) == (256, 1024)
    im = load_image(dicom("SC_rgb_jpeg_dcmtk.dcm"))
    assert im.rgb.shape == (100, 100, 3)


def test_undecodable_compressed_dicom_gets_one_line_error():
    with pytest.raises(InputError) as err:
        load_image(dicom("JPEG-lossy.dcm"))
    assert "JPEG Extended" in str(err.value) and "\n" not in str(err.value)


def test_multiframe_reads_one_frame():
    im = load_image(dicom("emri_small.dcm"))
    assert (im.frames, im.frame_index) == (10, 5)
    first = load_image(dicom("emri_small.dcm"), frame=0)
    assert first.frame_index == 0 and not np.array_equal(first.pixels, im.pixels)
    with pytest.raises(InputError, match="frame 10 does not exist"):
        load_image(dicom("emri_small.dcm"), frame=10)


def test_skimage_fundus_and_ihc(tmp_path):
    from skimage import data

    for name, arr in {"fundus.png": data.retina(), "ihc.jpg": data.immunohistochemistry()}.items():
        path = tmp_path / name
        Image.fromarray(arr).save(path)
        im = load_image(path)
        assert im.is_color and im.rgb.shape == arr.shape


def test_16bit_grayscale_png_and_tiff(tmp_path):
    arr = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    for suffix in ("png", "tif"):
        path = tmp_path / f"g16.{suffix}"
        Image.fromarray(arr).save(path)
        im = load_image(path)
        assert im.pixels.dtype == np.uint16 and np.array_equal(im.pixels, arr)
        assert im.meta.bits_stored == 16 and im.rgb.shape == (32, 64, 3)


def test_bmp_and_palette(tmp_path):
    path = tmp_path / "p.bmp"
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).convert("P").save(path)
    assert load_image(path).rgb.shape == (5, 7, 3)


def test_nifti_middle_slice(tmp_path):
    import nibabel as nib

    vol = np.random.default_rng(0).normal(size=(20, 30, 9)).astype(np.float32)
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.diag([0.5, 0.7, 2.0, 1.0])), path)
    im = load_image(path)
    assert (im.format, im.frames, im.frame_index, im.width, im.height) == ("nifti", 9, 4, 20, 30)
    assert im.meta.pixel_spacing == pytest.approx((0.7, 0.5))


# ---- malformed input: a one-line error naming the file -----------------------


def expect_error(path, match):
    with pytest.raises(InputError) as err:
        load_image(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert match in message, message


def test_missing_empty_directory_and_text(tmp_path):
    expect_error(tmp_path / "nope.png", "no such file")
    (tmp_path / "empty.png").write_bytes(b"")
    expect_error(tmp_path / "empty.png", "empty file")
    expect_error(tmp_path, "is a directory")
    (tmp_path / "notes.jpg").write_text("hello, not a jpeg")
    expect_error(tmp_path / "notes.jpg", "not a recognised image")


def test_truncated_png_and_dicom(tmp_path):
    good = tmp_path / "g.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "t.png"
    bad.write_bytes(good.read_bytes()[:200])
    expect_error(bad, "truncated or corrupt PNG")
    raw = open(dicom("CT_small.dcm"), "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(raw[: len(raw) - 5000])
    expect_error(cut, "truncated or corrupt DICOM pixel data")


def test_decompression_bomb_refused_from_header(tmp_path, monkeypatch):
    # a PNG header claiming 100000 x 100000 pixels, with no data behind it
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    expect_error(path, "image too large")


def test_dicom_pixel_budget_uses_rows_columns_frames(tmp_path, monkeypatch):
    monkeypatch.setenv("EVLF_MAX_PIXELS", "5000")
    expect_error(dicom("CT_small.dcm"), "128 x 128 x 1 frames")


def test_dicom_without_image(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    ds = FileDataset(str(tmp_path / "sr.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "SR"
    ds.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    expect_error(tmp_path / "sr.dcm", "holds no image")


def test_windowing_a_large_integer_image_through_a_table_is_exact() -> None:
    from evlf.core.imaging.render import TABLE_MIN_SAMPLES, _linear_window, by_table, window

    rng = np.random.default_rng(5)
    for dtype, low, high in ((np.int16, -1024, 3072), (np.uint16, 0, 4095), (np.uint8, 0, 255)):
        values = rng.integers(low, high, (TABLE_MIN_SAMPLES // 512 + 1, 512), dtype=dtype)
        assert np.array_equal(window(values, 40, 400), _linear_window(values, 40, 400))
        assert np.array_equal(by_table(lambda v: v.astype(np.float64) * 0.5 - 3, values), values.astype(np.float64) * 0.5 - 3)
        evaluated = []
        by_table(lambda v: evaluated.append(v.size) or v, values)
        assert evaluated == [1 << (8 * np.dtype(dtype).itemsize)]  # once per possible value, not per sample
    floats = rng.normal(size=TABLE_MIN_SAMPLES).astype(np.float32)
    assert np.array_equal(window(floats, 0, 2), _linear_window(floats, 0, 2))  # floats take the direct path

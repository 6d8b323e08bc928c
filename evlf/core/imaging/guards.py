"""Checks made before decoding: the file exists, is not empty, is what its bytes say, and is not too big."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from evlf.core.errors import InputError

#: Default pixel budget (width x height x frames) checked from headers; EVLF_MAX_PIXELS overrides.
DEFAULT_MAX_PIXELS = 512 * 1024 * 1024 // 2  # 256 Mpx

#: Default memory budget for decoding one image and its working copies; EVLF_MAX_IMAGE_BYTES overrides.
DEFAULT_MAX_IMAGE_BYTES = 2 * 1024**3  # 2 GiB



def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(name, f"must be an integer, got {raw!r}") from None
    if value <= 0:
        raise InputError(name, "must be positive")
    return value


def max_pixels() -> int:
    return _positive_env("EVLF_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def max_image_bytes() -> int:
    return _positive_env("EVLF_MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES)


def check_pixel_budget(path: Path, width: int, height: int, frames: int = 1, samples: int = 1) -> None:
    """The header's pixel count (all frames) against EVLF_MAX_PIXELS; `samples` is checked by the byte budget."""
    if width <= 0 or height <= 0 or frames <= 0 or samples <= 0:
        raise InputError(path, f"header gives an empty image ({width} x {height} x {frames} frames, {samples} samples)")
    total = width * height * frames
    limit = max_pixels()
    if total > limit:
        raise InputError(
            path,
            f"image too large: {width} x {height} x {frames} frames = {total:,} pixels exceeds the limit of "
            f"{limit:,} (set EVLF_MAX_PIXELS to raise it)",
        )


def decode_bytes(width: int, height: int, samples: int, bits: int, copies: int = 1, working: int = 4) -> int:
    """Memory one decode needs: `copies` decoded arrays at their depth, `working` bytes per sample, the RGB rendering."""
    pixels = width * height
    stored = max(1, -(-bits // 8))  # bits rounded up to whole bytes
    return pixels * samples * (stored * copies + working) + pixels * 3


def check_memory_budget(
    path: Path, width: int, height: int, samples: int, bits: int, *, copies: int = 1, working: int = 4
) -> None:
    """Refuse, before decoding, an image whose decode and working copies would exceed EVLF_MAX_IMAGE_BYTES."""
    if width <= 0 or height <= 0 or samples <= 0 or not 0 < bits <= 64:
        raise InputError(path, f"header gives an impossible image ({width} x {height}, {samples} samples, {bits} bits)")
    need = decode_bytes(width, height, samples, bits, copies, working)
    limit = max_image_bytes()
    if need > limit:
        raise InputError(
            path,
            f"image too large to decode: {width} x {height} x {samples} samples at {bits} bits needs about "
            f"{need / 2**20:,.0f} MiB, over the limit of {limit / 2**20:,.0f} MiB (set EVLF_MAX_IMAGE_BYTES to raise it)",
        )


def check_readable_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not an image file")
    if not path.is_file():
        raise InputError(path, "not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    if size == 0:
        raise InputError(path, "empty file")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")


# DICOM first: many DICOM files carry a TIFF header in their 128-byte preamble.
_MAGIC: list[tuple[bytes, int, str]] = [
    (b"DICM", 128, "dicom"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"II+\x00", 0, "tiff"),
    (b"BM", 0, "bmp"),
    (b"n+1\x00", 344, "nifti"),
    (b"ni1\x00", 344, "nifti"),
]


def sniff_format(path: Path) -> str:
    """The format from the file's bytes, not its extension (a renamed text file is refused)."""
    with path.open("rb") as fh:
        head = fh.read(352)
    for magic, offset, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    name = path.name.lower()
    if name.endswith((".nii.gz", ".nii")):
        if head[:2] == b"\x1f\x8b" or name.endswith(".nii"):
            return "nifti"
    if name.endswith(".dcm") or name.endswith(".dicom") or "." not in name:
        # DICOM without the 128-byte preamble (old ACR-NEMA style): let pydicom decide
        if _looks_like_raw_dicom(head):
            return "dicom"
    suffix = path.suffix.lower().lstrip(".") or "no extension"
    raise InputError(path, f"not a recognised image file (its bytes match no supported format; extension: {suffix})")


def _looks_like_raw_dicom(head: bytes) -> bool:
    # group 0x0008 (or 0x0002) little-endian tag at offset 0
    return len(head) >= 8 and head[0:2] in (b"\x08\x00", b"\x02\x00")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

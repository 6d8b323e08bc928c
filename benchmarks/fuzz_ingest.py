"""Ingest under mutation: N mutated real files through the loader (or `evlf info`), counted by outcome.

Seeds are real files: pydicom's test data in several transfer syntaxes,
scikit-image pictures saved as PNG, JPEG, TIFF and BMP, and a small NIfTI.
Each mutant gets 1-6 random edits (bit flips, boundary integers, random
bytes, cuts, insertions), biased to the first kilobyte where the headers are;
most PNG mutants get their chunk CRCs recomputed so they reach the decoder.
Outcomes: `read` (loaded), `clean` (InputError, one line naming the file),
`internal` (any other exception, a bug), `hang` (over --timeout), `crashed`
(the worker died); `noisy` counts files that also printed or warned. Loads run
in a worker process under an address-space limit, restarted after a hang or a
crash. The last line is one JSON object of the counts.

    python benchmarks/fuzz_ingest.py [--n 1200] [--seed 0] [--timeout 20] [--cli]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import multiprocessing as mp
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

DICOM_SEEDS = (
    "CT_small.dcm", "MR_small.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
    "emri_small.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm", "SC_rgb_jpeg_dcmtk.dcm",
)
INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def seeds() -> dict[str, bytes]:
    import nibabel as nib
    from PIL import Image
    from pydicom.data import get_testdata_file
    from skimage import data

    out = {name: Path(get_testdata_file(name)).read_bytes() for name in DICOM_SEEDS}
    camera, colour = data.camera()[::2, ::2], data.astronaut()[::4, ::4]
    for name, pixels, fmt in (
        ("gray.png", camera, "PNG"), ("colour.png", colour, "PNG"), ("gray16.png", camera.astype(np.uint16) * 257, "PNG"),
        ("colour.jpg", colour, "JPEG"), ("gray.jpg", camera, "JPEG"), ("gray.tif", camera, "TIFF"), ("colour.bmp", colour, "BMP"),
    ):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        out[name] = buf.getvalue()
    volume = np.random.default_rng(0).normal(size=(32, 24, 7)).astype(np.float32)
    out["volume.nii"] = nib.Nifti1Image(volume, np.diag([1.0, 1.2, 3.0, 1.0])).to_bytes()
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if len(out) < 2:
            break
        at = rng.randrange(min(len(out), 1024)) if rng.random() < 0.6 else rng.randrange(len(out))
        kind = rng.choice(("flip", "integer", "bytes", "cut", "insert"))
        if kind == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "integer":
            fmt = rng.choice(("<I", ">I", "<H", ">H"))
            packed = struct.pack(fmt, rng.choice(INTERESTING) & (0xFFFF if fmt.endswith("H") else 0xFFFFFFFF))
            out[at : at + len(packed)] = packed
        elif kind == "bytes":
            out[at : at + rng.randint(1, 16)] = rng.randbytes(rng.randint(1, 16))
        elif kind == "cut":
            del out[at:]
        else:
            out[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(out)


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every PNG chunk's CRC, so a mutant reaches the decoder instead of failing the checksum."""
    import zlib

    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        (length,) = struct.unpack_from(">I", out, at)
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(out[at + 4 : end])))
        at = end + 4
    return bytes(out)


def _load_one(path: str) -> tuple[str, str, bool]:
    import logging

    from evlf.core.errors import InputError
    from evlf.core.imaging import load_image

    stderr, sys.stderr = sys.stderr, io.StringIO()
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                load_image(path)
                outcome, detail = "read", ""
            except InputError as exc:
                message = str(exc)
                outcome = "clean" if path in message and "\n" not in message else "internal"
                detail = message if outcome == "internal" else ""
            except BaseException as exc:  # noqa: BLE001 - counting what escapes is the point
                outcome, detail = "internal", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        noise = [f"{w.category.__name__}: {w.message}" for w in caught] + sys.stderr.getvalue().splitlines()
        noisy = bool(noise)
        if noisy and not detail:
            detail = "noise: " + " | ".join(" ".join(n.split())[:120] for n in noise[:2])
    finally:
        logging.getLogger().removeHandler(handler)
        sys.stderr = stderr
    return outcome, detail, noisy


def _worker(conn: Any, address_space: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    while True:
        path = conn.recv()
        if path is None:
            return
        conn.send(_load_one(path))


class Loader:
    """One worker process; a hang or a death is counted and the worker replaced."""

    def __init__(self, timeout: float, address_space: int) -> None:
        self.timeout, self.address_space = timeout, address_space
        self.ctx = mp.get_context("fork")
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.address_space), daemon=True)
        self.proc.start()

    def load(self, path: str) -> tuple[str, str, bool]:
        self.conn.send(path)
        if self.conn.poll(self.timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        outcome = "hang" if self.proc.is_alive() else "crashed"
        self.proc.kill()
        self.proc.join()
        self._start()
        return outcome, "", False

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def run_cli(path: str, timeout: float) -> tuple[str, str, bool]:
    try:
        done = subprocess.run([sys.executable, "-m", "evlf", "info", path], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", "", False
    err = [line for line in done.stderr.splitlines() if line.strip()]
    if done.returncode == 0:
        return "read", "", bool(err)
    if done.returncode == 2:
        return "clean", "", len(err) > 1
    return "internal", (err[-1] if err else f"exit {done.returncode}")[:200], True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1200, help="mutated files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a load counts as a hang")
    parser.add_argument("--address-space-gb", type=float, default=6.0, help="the worker's memory limit")
    parser.add_argument("--cli", action="store_true", help="run `evlf info` per file instead of the loader (slow)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    corpus = seeds()
    names = sorted(corpus)
    counts: collections.Counter[str] = collections.Counter()
    by_seed: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    internal: list[str] = []
    loader = None if args.cli else Loader(args.timeout, int(args.address_space_gb * 2**30))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.n):
            name = rng.choice(names)
            path = Path(tmp) / f"{n:05d}-{name}"
            data = mutate(rng, corpus[name])
            if name.endswith(".png") and rng.random() < 0.7:
                data = fix_png_crcs(data)
            path.write_bytes(data)
            outcome, detail, noisy = run_cli(str(path), args.timeout) if loader is None else loader.load(str(path))
            counts[outcome] += 1
            counts["noisy"] += noisy
            by_seed[name][outcome] += 1
            if (outcome in ("internal", "hang", "crashed") or noisy) and len(internal) < 20:
                internal.append(f"{path.name}: {outcome} {detail}")
            if outcome != "read":
                path.unlink()
    if loader is not None:
        loader.close()
    seconds = time.perf_counter() - start
    for name in names:
        print(f"{name:28s} " + " ".join(f"{k} {v}" for k, v in sorted(by_seed[name].items())))
    for line in internal:
        print("  ", line)
    result = {
        "files": args.n,
        "mode": "cli" if args.cli else "loader",
        "seed": args.seed,
        **{k: counts[k] for k in ("read", "clean", "internal", "hang", "crashed", "noisy")},
        "seconds": round(seconds, 1),
    }
    print(json.dumps(result))
    return 0 if not (counts["internal"] or counts["hang"] or counts["crashed"]) else 1


if __name__ == "__main__":
    sys.exit(main())

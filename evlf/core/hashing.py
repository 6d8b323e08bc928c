"""The sha256 helpers every layer shares: files, model weights, pixel arrays, canonical JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(path: Path, full_limit: int = 1 << 30) -> str:
    """sha256 of a model directory's weight files; above `full_limit` bytes, of names, sizes and each file's first and last MiB."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as fh:
            if total <= full_limit:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            else:
                size = file.stat().st_size
                digest.update(str(size).encode())
                digest.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def array_digest(array: np.ndarray) -> str:
    """sha256 of a pixel array with its dtype and shape."""
    arr = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """One JSON text per value: sorted keys, no spaces, so equal data hashes equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

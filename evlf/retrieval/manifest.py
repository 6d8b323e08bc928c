"""The store manifest: which embedder made the vectors, their size and metric, and the index file's checksum."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from evlf.core.errors import InputError

MANIFEST_VERSION = 1


class Manifest(BaseModel):
    format_version: int = MANIFEST_VERSION
    embedder: str  # Embedder.id, e.g. "efficientnet-lite0@imagenet-57934424"
    embedder_config: dict[str, Any] = Field(default_factory=dict)
    dim: int = Field(gt=0)
    metric: str = "inner_product"  # on unit vectors: cosine similarity
    count: int = Field(0, ge=0)
    factory: str = "IDMap2,Flat"
    factory_auto: bool = True  # the index type follows the size unless the user chose a factory string
    nprobe: int | None = None
    generation: int = Field(0, ge=0)
    checksum: str = ""  # sha256 of the index file
    # the index file as it was when written and hashed: a file that still matches is not hashed again on open
    index_size: int | None = None
    index_mtime_ns: int | None = None


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write beside the target, flush to disk, then rename over it: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(data)
    except FileNotFoundError:
        raise InputError(path, "case store manifest is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(path, "case store manifest is corrupt (not JSON)") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(path, f"case store manifest is invalid ({'.'.join(map(str, err['loc']))}: {err['msg']})") from None
    if manifest.format_version != MANIFEST_VERSION:
        raise InputError(path, f"manifest format {manifest.format_version} is not supported (expected {MANIFEST_VERSION})")
    return manifest


def write_manifest(path: Path, manifest: Manifest) -> None:
    atomic_write_bytes(path, manifest.model_dump_json(indent=2).encode())

"""Fixtures for retrieval tests: a small deterministic embedder, PNG cases on disk, and the real starter bank (built once)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from evlf.core.embed import Embedder
from evlf.core.types import LoadedImage
from evlf.retrieval import Case, CaseStore


class ColourEmbedder(Embedder):
    """Mean colour plus a little hash noise: similar colours, similar vectors; cheap and deterministic."""

    name: ClassVar[str] = "colour-test"
    dim = 16
    version = "1"

    def __init__(self, version: str = "1") -> None:
        self.version = version
        self.calls = 0

    def embed(self, images: list[LoadedImage]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, im in enumerate(images):
            out[i, :3] = im.rgb.reshape(-1, 3).mean(0) / 255.0
            seed = int(hashlib.sha256(im.rgb.tobytes()).hexdigest()[:8], 16)
            out[i, 3:] = np.random.default_rng(seed).standard_normal(self.dim - 3) * 0.02
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 32), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour, dtype=np.int16) + rng.integers(-6, 7, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def embedder() -> ColourEmbedder:
    return ColourEmbedder()


@pytest.fixture
def make_cases(tmp_path: Path) -> Callable[..., list[Case]]:
    """n cases with PNG images of distinct colours; labels and modality cycle."""

    def make(n: int, prefix: str = "c", modalities: tuple[str, ...] = ("CT", "MR"), labels: tuple[str, ...] = ("a", "b")) -> list[Case]:
        cases = []
        for i in range(n):
            colour = ((37 * i) % 256, (91 * i + 40) % 256, (53 * i + 200) % 256)
            path = write_png(tmp_path / f"{prefix}{i}.png", colour, seed=i)
            cases.append(
                Case(
                    case_id=f"{prefix}{i}",
                    image_path=str(path),
                    modality=modalities[i % len(modalities)],
                    specialty="radiology" if i % 3 else "pulmonology",
                    labels=[labels[i % len(labels)]] if labels else [],
                    boxes=[[2, 3, 20, 25]] if i % 2 == 0 else [],
                )
            )
        return cases

    return make


@pytest.fixture
def store(tmp_path: Path, embedder: ColourEmbedder) -> CaseStore:
    s = CaseStore.create(tmp_path / "store", embedder)
    yield s
    s.close()


def snapshot(root: Path) -> dict[str, str]:
    """Hash of every file in a store folder, to prove a failed write changed nothing."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.fixture(scope="session")
def starter_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real starter bank with the real EfficientNet-Lite0 encoder, built once per session."""
    from evlf.retrieval.starter import build_starter

    root = tmp_path_factory.mktemp("starter") / "store"
    with CaseStore.open(root, create=True) as s:
        build_starter(s)
    return root


def write_dataset(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path

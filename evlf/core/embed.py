"""The embedder protocol: images to L2-normalised float32 vectors, batched."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from evlf.core.types import LoadedImage


class Embedder(ABC):
    name: ClassVar[str]
    dim: int
    version: str = "0"

    @property
    def id(self) -> str:
        """Identity recorded in every index manifest; two embedders with different ids never mix."""
        return f"{self.name}@{self.version}"

    @abstractmethod
    def embed(self, images: list[LoadedImage]) -> np.ndarray:
        """Return an (n, dim) float32 array with unit-norm rows."""

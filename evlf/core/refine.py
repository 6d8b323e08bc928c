"""The refiner protocol: every box of one image in, a mask and a tight box per box out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field

from evlf.core.types import Box, LoadedImage, Mask


class Refinement(BaseModel):
    mask: Mask
    box: Box  # the mask's tight box, original pixels
    score: float  # the refiner's own confidence in the mask
    agreement: float = Field(ge=0.0, le=1.0)  # IoU(model box, refined box)


class Refiner(ABC):
    name: ClassVar[str]

    @abstractmethod
    def refine(self, image: LoadedImage, boxes: list[Box]) -> list[Refinement]:
        """One call per image; raises InputError for a box outside the image or of zero area."""

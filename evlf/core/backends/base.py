"""The backend protocol: batched generation over chat requests with images.

A request is a whole conversation: system prompt, few-shot exemplars as earlier
user/assistant turns with their own images, and the final user turn. Images
travel as 8-bit RGB arrays (the LoadedImage rendering); the backend reports
the size it actually fed the model so boxes can be mapped back exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evlf.core.answer import EvlfAnswer
from evlf.core.geometry import BoxConvention


class Turn(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    role: Literal["user", "assistant"]
    text: str
    images: list[np.ndarray] = Field(default_factory=list, repr=False)


class GenerationRequest(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    system: str = ""
    turns: list[Turn] = Field(min_length=1)
    max_new_tokens: int = Field(512, gt=0)
    temperature: float = Field(0.0, ge=0.0)
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    request_id: str | None = None


class ModelIdentity(BaseModel):
    name: str
    family: str
    weights_sha256: str | None = None
    trained: bool = True
    box_convention: BoxConvention = BoxConvention.UNIT


class Generation(BaseModel):
    """One reply. `answer` is set when the text parsed; otherwise `error` says why and `text` keeps the raw reply."""

    text: str
    answer: EvlfAnswer | None = None
    think: str = ""
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    model: ModelIdentity
    # (width, height) the model saw for each image of the final user turn, in order
    image_sizes: list[tuple[int, int]] = Field(default_factory=list)
    repaired: bool = False


class Backend(ABC):
    """A way to run the core VLM. Subclasses set `name` and implement `generate`."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def identity(self) -> ModelIdentity: ...

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Answer every request, in order; one failed reply never fails the batch."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model memory or connections."""

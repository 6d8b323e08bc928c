"""What an exporter plugin registers: a named renderer of a Report to a file format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evlf.core.types import Report


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str
    media_type: str
    render: Callable[[Report, list[Any]], str | bytes]  # render(report, loaded_images)

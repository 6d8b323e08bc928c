"""Built-in box refiners: `classical` (no weights, the offline default) and `sam` (Segment Anything / MedSAM).

Both modules import their heavy libraries only when a refiner is used, so
loading this plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.hookspecs import hookimpl
from evlf.plugins.refiners.classical import ClassicalRefiner
from evlf.plugins.refiners.sam import SamRefiner

__all__ = ["ClassicalRefiner", "SamRefiner", "register_refiners"]


@hookimpl
def register_refiners(register: Callable[[Any], None]) -> None:
    register(ClassicalRefiner)
    register(SamRefiner)

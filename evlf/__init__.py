"""evlf: medical images to a reasoned, grounded diagnostic report.

Importing evlf stays light (no torch, transformers, faiss): the heavy
libraries load where they are used, so the CLI and plugins start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from evlf.agents.pipeline import Pipeline

__all__ = ["Pipeline", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Pipeline":
        from evlf.agents.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'evlf' has no attribute {name!r}")

"""Model backends: one file per backend, all behind `Backend` (base.py)."""

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity, Turn

__all__ = ["Backend", "Generation", "GenerationRequest", "ModelIdentity", "Turn"]

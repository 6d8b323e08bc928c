"""The backend protocol (base.py); the built-in backends live in evlf/plugins/backends/, one module each."""

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity, Turn

__all__ = ["Backend", "Generation", "GenerationRequest", "ModelIdentity", "Turn"]

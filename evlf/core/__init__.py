"""evlf.core: domain types, geometry, image loading, hookspecs, plugin host, protocols.

What a third-party plugin may import. Never imports torch, transformers, faiss
or segment_anything at import time.
"""

from evlf.core.errors import BackendError, ConfigError, EvlfError, InputError, ParseError, PluginError
from evlf.core.hookspecs import hookimpl
from evlf.core.types import (
    SCHEMA_VERSION,
    Box,
    CheckIssue,
    Diagnosis,
    DifferentialItem,
    Exemplar,
    Finding,
    ImageMeta,
    ImageRef,
    LoadedImage,
    Mask,
    Provenance,
    ReasoningStep,
    Report,
    Study,
)

__all__ = [
    "SCHEMA_VERSION",
    "BackendError",
    "Box",
    "CheckIssue",
    "ConfigError",
    "Diagnosis",
    "DifferentialItem",
    "EvlfError",
    "Exemplar",
    "Finding",
    "ImageMeta",
    "ImageRef",
    "InputError",
    "LoadedImage",
    "Mask",
    "ParseError",
    "PluginError",
    "Provenance",
    "ReasoningStep",
    "Report",
    "Study",
    "hookimpl",
]

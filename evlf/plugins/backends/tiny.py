"""A tiny randomly initialised VLM, built locally: evlf runs end to end with no weights.

The model is built once (seeded, byte-level tokenizer, the family's real
architecture and processor) and cached on disk; after that it loads like any
local model through the transformers backend. Everything it says is untrained
noise and is labelled so (`ModelIdentity.trained=False`). Pass a JSON Schema
in the request to get answers that validate anyway (constrained decoding).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from evlf.core.hookspecs import hookimpl
from evlf.plugins.backends.adapter import reject_unknown
from evlf.plugins.backends.families import get_family
from evlf.plugins.backends.tiny_models import build_tiny_model
from evlf.plugins.backends.transformers_backend import TransformersBackend

TINY_FORMAT = "1"  # bump when the tiny recipe changes, so stale caches are rebuilt


def tiny_model_dir(family: str = "qwen2_vl", cache_dir: str | None = None, seed: int = 0) -> Path:
    """The tiny model's directory, built on first use (atomically, so parallel workers are safe)."""
    import transformers
    from platformdirs import user_cache_dir

    get_family(family)
    root = Path(cache_dir) if cache_dir else Path(user_cache_dir("evlf")) / "models"
    target = root / f"tiny-{family}-s{seed}-tf{transformers.__version__}-v{TINY_FORMAT}"
    if (target / "evlf_tiny.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        build_tiny_model(family, staging, seed=seed)
        try:
            os.rename(staging, target)
        except OSError:  # another process won the race; its copy is identical
            if not (target / "evlf_tiny.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class TinyBackend(TransformersBackend):
    """The transformers backend on a tiny random model of `family` (untrained)."""

    name: ClassVar[str] = "tiny"

    def __init__(self, family: str = "qwen2_vl", cache_dir: str | None = None, seed: int = 0, **kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in ("device", "max_batch_size", "repair") if k in kwargs}
        reject_unknown(self.name, kwargs)
        path = tiny_model_dir(family, cache_dir, seed)
        super().__init__(str(path), device=options.get("device", "cpu"), dtype="float32", **{k: v for k, v in options.items() if k != "device"})
        self._identity = self._identity.model_copy(update={"name": f"tiny-{family}", "trained": False})
        self.threads = 1  # a model this small only loses time to thread synchronisation


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(TinyBackend)

"""The defaults every entry point reads: the Python API, `evlf diagnose`, `evlf eval` and the server.

The backend is the shipped `demo` model; when its weights are not installed
a run refuses with a ConfigError saying what to pass instead. The untrained
`tiny` model is used only when asked for by name. Whether a report comes
from the demo weights is decided by their hash, not by the backend's name, so
`--backend transformers --model evlf/models/demo` still carries the banner.
"""

from __future__ import annotations

import functools
from pathlib import Path

from evlf.retrieval.paths import default_store_path  # noqa: F401  (re-exported: the one copy lives beside the store)

from evlf.core.errors import ConfigError

GRAPH = "full"
BACKEND = "demo"
REFINER = "classical"
CONSTRAINED = True

DEMO_MODEL_NAME = "evlf-demo-synthetic-lesions-not-for-clinical-use"


def demo_model_dir() -> Path:
    """Where the package ships the demo model (evlf/models/demo)."""
    import evlf

    return Path(evlf.__file__).resolve().parent / "models" / "demo"


def demo_installed() -> bool:
    return (demo_model_dir() / "model.safetensors").is_file()


def require_demo() -> None:
    if not demo_installed():
        raise ConfigError(
            f"the demo model's weights are not installed ({demo_model_dir()}): pass backend='transformers', model=DIR "
            "(CLI: --backend transformers --model DIR), or backend='tiny' for the untrained test model"
        )


@functools.lru_cache(maxsize=1)
def demo_weights_sha256() -> str | None:
    """The digest the transformers backend records for the demo weights (None when they are not installed)."""
    if not demo_installed():
        return None
    from evlf.core.hashing import weights_digest

    return weights_digest(demo_model_dir())


def is_demo_weights(weights_sha256: str | None) -> bool:
    return weights_sha256 is not None and weights_sha256 == demo_weights_sha256()

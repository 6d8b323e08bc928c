"""Built-in plugin: the `demo` backend, a small VLM shipped inside the package (evlf/models/demo/).

It was trained by `evlf train sft` then `evlf train grpo` on the synthetic
lesion set only (see its MODEL_CARD.md) and runs through the same
transformers backend code as any user's model. Its identity says so in every
report's provenance: the demo model, synthetic lesions only, not for clinical use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from evlf.core.errors import ConfigError
from evlf.core.hookspecs import hookimpl
from evlf.plugins.backends.adapter import reject_unknown
from evlf.plugins.backends.transformers_backend import TransformersBackend

DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "demo"
DEMO_MODEL_NAME = "evlf-demo-synthetic-lesions-not-for-clinical-use"


class DemoBackend(TransformersBackend):
    """The shipped demo model (synthetic lesions only; not for clinical use), on CPU float32 by default."""

    name: ClassVar[str] = "demo"

    def __init__(self, **kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in ("device", "max_batch_size", "repair", "dtype") if k in kwargs}
        reject_unknown(self.name, kwargs)
        if not (DEMO_MODEL_DIR / "model.safetensors").is_file():
            raise ConfigError(f"{DEMO_MODEL_DIR}: the demo model's weights are missing (rebuild them with `make demo-model`)")
        options.setdefault("device", "cpu")
        options.setdefault("dtype", "float32")
        super().__init__(str(DEMO_MODEL_DIR), **options)
        self._identity = self._identity.model_copy(update={"name": DEMO_MODEL_NAME, "trained": True})
        self.threads = 1  # one thread: on a busy 2-core machine a second costs 9 ms/token -> 150-300 ms/token (OpenMP waits)


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(DemoBackend)

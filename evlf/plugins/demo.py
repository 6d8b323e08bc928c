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

from evlf.core.backends.common import reject_unknown
from evlf.core.backends.transformers_backend import TransformersBackend
from evlf.core.errors import ConfigError
from evlf.core.hookspecs import hookimpl

DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"
DEMO_MODEL_NAME = "evlf-demo-synthetic-lesions-not-for-clinical-use"


class DemoBackend(TransformersBackend):
    """The shipped demo model (synthetic lesions only; not for clinical use), on CPU float32 by default."""

    name: ClassVar[str] = "demo"

    def __init__(self, **kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in ("device", "max_batch_size", "repair", "dtype") if k in kwargs}
        reject_unknown(self.name, kwargs)
        if not (DEMO_MODEL_DIR / "model.safetensors").is_file():
            raise ConfigError(f"{DEMO_MODEL_DIR}: the demo model's weights are missing (rebuild them with `make demo-model`)")
        import evlf.models.lite0_vision  # noqa: F401  (registers the demo model's vision tower with AutoModel)

        options.setdefault("device", "cpu")
        options.setdefault("dtype", "float32")
        super().__init__(str(DEMO_MODEL_DIR), **options)
        self._identity = self._identity.model_copy(update={"name": DEMO_MODEL_NAME, "trained": True})
        self.threads = 2  # a model this small loses time to more threads


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(DemoBackend)

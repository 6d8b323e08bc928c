"""Built-in plugin: the model backends (`tiny`, `transformers`, `openai`).

Registering the classes imports no model library; torch and transformers load
when a backend is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.plugins.backends.openai_backend import OpenAIBackend
from evlf.plugins.backends.tiny import TinyBackend
from evlf.plugins.backends.transformers_backend import TransformersBackend
from evlf.core.hookspecs import hookimpl


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(TinyBackend)
    register(TransformersBackend)
    register(OpenAIBackend)

"""What a graph plugin registers: a named, versioned builder of a compiled LangGraph."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def lazy_builder(target: str) -> Callable[..., Any]:
    """A builder named "package.module:function", imported on first call, so listing graphs imports no langgraph."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"a graph builder given by name must read 'module:function', got {target!r}")

    def build(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    build.__qualname__ = build.__name__ = target
    return build


@dataclass(frozen=True)
class GraphSpec:
    name: str
    version: str
    description: str
    build: Callable[..., Any]  # build(checkpointer=None) -> compiled graph; see `lazy_builder`

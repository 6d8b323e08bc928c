"""What a graph plugin registers: a named, versioned builder of a compiled LangGraph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GraphSpec:
    name: str
    version: str
    description: str
    build: Callable[..., Any]  # build(checkpointer=None, interrupt_before_report=False) -> compiled graph

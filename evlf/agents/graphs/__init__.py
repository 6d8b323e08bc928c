"""Built-in graphs, registered through register_graphs exactly like a third party's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.hookspecs import hookimpl


@hookimpl
def register_graphs(register: Callable[[Any], None]) -> None:
    from evlf.agents.graphs import direct, full, panel, rag

    for module in (direct, rag, full, panel):
        register(module.SPEC)

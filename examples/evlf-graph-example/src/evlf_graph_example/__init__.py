"""An example third-party graph: refinement + verification, no retrieval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.agents.graphs.common import build_study_graph
from evlf.core.graph_spec import GraphSpec
from evlf.core.hookspecs import hookimpl

__version__ = "0.1.0"


def build(checkpointer: Any = None) -> Any:
    return build_study_graph("self-check", "1", retrieve=False, refine=True, verify=True, checkpointer=checkpointer)


@hookimpl
def register_graphs(register: Callable[[Any], None]) -> None:
    register(GraphSpec(name="self-check", version="1", description="Refinement and verification without retrieval.", build=build))

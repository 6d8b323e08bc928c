"""The `full` graph: Retrieval, box refinement and the bounded verification loop (the default)."""

from __future__ import annotations

from typing import Any

from evlf.agents.graphs.common import build_study_graph
from evlf.core.graph_spec import GraphSpec

NAME = "full"
VERSION = "1"


def build(checkpointer: Any = None) -> Any:
    return build_study_graph(NAME, VERSION, retrieve=True, refine=True, verify=True, checkpointer=checkpointer)


SPEC = GraphSpec(name=NAME, version=VERSION, description="Retrieval, box refinement and the bounded verification loop (the default).", build=build)

"""The `rag` graph: Retrieved similar solved cases as few-shot exemplars, then one VLM call."""

from __future__ import annotations

from typing import Any

from evlf.agents.graphs.common import build_study_graph
from evlf.core.graph_spec import GraphSpec

NAME = "rag"
VERSION = "1"


def build(checkpointer: Any = None) -> Any:
    return build_study_graph(NAME, VERSION, retrieve=True, refine=False, verify=False, checkpointer=checkpointer)


SPEC = GraphSpec(name=NAME, version=VERSION, description="Retrieved similar solved cases as few-shot exemplars, then one VLM call.", build=build)

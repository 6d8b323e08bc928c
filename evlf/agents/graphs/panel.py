"""The `panel` graph: Several specialists read the study in parallel (retrieval and refinement each); an aggregator reconciles them."""

from __future__ import annotations

from typing import Any

from evlf.agents.graphs.common import build_study_graph
from evlf.core.graph_spec import GraphSpec

NAME = "panel"
VERSION = "1"


def build(checkpointer: Any = None) -> Any:
    return build_study_graph(NAME, VERSION, retrieve=True, refine=True, verify=False, panel=True, checkpointer=checkpointer)


SPEC = GraphSpec(name=NAME, version=VERSION, description="Several specialists read the study in parallel (retrieval and refinement each); an aggregator reconciles them.", build=build)

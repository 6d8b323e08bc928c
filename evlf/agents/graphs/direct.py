"""The `direct` graph: One VLM call per routed specialty, the plain EVLF-FM way: no retrieval, no refinement, no verification."""

from __future__ import annotations

from typing import Any

from evlf.agents.graphs.common import build_study_graph
from evlf.core.graph_spec import GraphSpec

NAME = "direct"
VERSION = "1"


def build(checkpointer: Any = None) -> Any:
    return build_study_graph(NAME, VERSION, retrieve=False, refine=False, verify=False, checkpointer=checkpointer)


SPEC = GraphSpec(name=NAME, version=VERSION, description="One VLM call per routed specialty, the plain EVLF-FM way: no retrieval, no refinement, no verification.", build=build)

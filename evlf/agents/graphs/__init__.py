"""Built-in graphs, registered through register_graphs exactly like a third party's.

Registering imports no langgraph: each spec names its module's builder, which
is imported when the graph is first built (tests check the names, versions
and descriptions match each module's own SPEC).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.graph_spec import GraphSpec, lazy_builder
from evlf.core.hookspecs import hookimpl

BUILT_IN: tuple[tuple[str, str, str], ...] = (
    ("direct", "1", "One VLM call per routed specialty, the plain EVLF-FM way: no retrieval, no refinement, no verification."),
    ("rag", "1", "Retrieved similar solved cases as few-shot exemplars, then one VLM call."),
    ("full", "1", "Retrieval, box refinement and the bounded verification loop (the default)."),
    ("panel", "1", "Several specialists read the study in parallel (retrieval and refinement each); an aggregator reconciles them."),
)


@hookimpl
def register_graphs(register: Callable[[Any], None]) -> None:
    for name, version, description in BUILT_IN:
        register(GraphSpec(name=name, version=version, description=description, build=lazy_builder(f"evlf.agents.graphs.{name}:build")))

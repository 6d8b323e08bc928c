"""The shape all built-in graphs share: ingest -> triage -> specialists (Send) -> aggregate -> report."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from evlf.agents.runtime import RunContext
from evlf.agents.graphs.specialist import build_specialist
from evlf.agents.nodes.aggregate import aggregate
from evlf.agents.nodes.ingest import ingest
from evlf.agents.nodes.report import make_report_node
from evlf.agents.nodes.triage import fan_out, triage, triage_panel
from evlf.agents.state import InputState, OutputState, State


def build_study_graph(
    name: str,
    version: str,
    *,
    retrieve: bool,
    refine: bool,
    verify: bool,
    panel: bool = False,
    checkpointer: Any = None,
) -> Any:
    g = StateGraph(State, context_schema=RunContext, input_schema=InputState, output_schema=OutputState)
    g.add_node("ingest", ingest)
    g.add_node("triage", triage_panel if panel else triage)
    g.add_node("specialist", build_specialist(retrieve=retrieve, refine=refine, verify=verify))
    g.add_node("aggregate", aggregate)
    g.add_node("report", make_report_node(name, version))
    g.add_edge(START, "ingest")
    g.add_edge("ingest", "triage")
    g.add_conditional_edges("triage", fan_out, ["specialist"])
    g.add_edge("specialist", "aggregate")
    g.add_edge("aggregate", "report")
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer, name=name)

"""The specialist branch every graph runs per routed specialty, with optional steps.

retrieve? -> reason -> ground -> refine? -> verify? (-> reason, bounded) -> finish
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from evlf.agents.runtime import RunContext
from evlf.agents.nodes.ground import ground
from evlf.agents.nodes.reason import reason
from evlf.agents.nodes.refine import refine as refine_node
from evlf.agents.nodes.retrieve import retrieve as retrieve_node
from evlf.agents.nodes.verify import after_verify, finish
from evlf.agents.nodes.verify import verify as verify_node
from evlf.agents.state import SpecialistDraft, SpecialistState


class SpecialistInput(TypedDict, total=False):
    study: Any
    images: Any
    specialty: str


class SpecialistOutput(TypedDict, total=False):
    drafts: list[SpecialistDraft]
    warnings: list[str]
    timings_ms: dict[str, float]
    usage: dict[str, float]


def build_specialist(*, retrieve: bool, refine: bool, verify: bool) -> Any:
    g = StateGraph(SpecialistState, context_schema=RunContext, input_schema=SpecialistInput, output_schema=SpecialistOutput)
    g.add_node("reason", reason)
    g.add_node("ground", ground)
    g.add_node("finish", finish)
    if retrieve:
        g.add_node("retrieve", retrieve_node)
        g.add_edge(START, "retrieve")
        g.add_edge("retrieve", "reason")
    else:
        g.add_edge(START, "reason")
    g.add_edge("reason", "ground")
    last = "ground"
    if refine:
        g.add_node("refine", refine_node)
        g.add_edge("ground", "refine")
        last = "refine"
    if verify:
        g.add_node("verify", verify_node)
        g.add_edge(last, "verify")
        g.add_conditional_edges("verify", after_verify, ["reason", "finish"])
    else:
        g.add_edge(last, "finish")
    g.add_edge("finish", END)
    return g.compile()

"""A graph from a researcher's own package registers and runs like the built-ins."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from evlf.agents.pipeline import Pipeline
from evlf.core.plugins import get_host
from evlf.core.types import Study

EXAMPLE = Path(__file__).parents[2] / "examples" / "evlf-graph-example" / "src" / "evlf_graph_example" / "__init__.py"


def test_example_graph_registers_and_runs(images, scripted):
    spec = importlib.util.spec_from_file_location("evlf_graph_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    host = get_host()
    host.register(module, name="evlf_graph_example", version=module.__version__)
    try:
        assert "self-check" in host.registries.graphs.names()
        seen: list[str] = []
        report = Pipeline("self-check", backend=scripted()).run(
            Study.from_paths([images["chest"]], id="custom"), on_update=lambda u: seen.append(u.node)
        )
        assert report.provenance.graph == "self-check"
        assert "retrieve" not in seen and {"refine", "verify"} <= set(seen)
    finally:
        host.unregister("evlf_graph_example")
    assert "self-check" not in host.registries.graphs.names()

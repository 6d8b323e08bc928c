"""`import evlf`, `import evlf.core` and listing plugins stay light: no torch, transformers, faiss, SAM or langgraph."""

import subprocess
import sys

HEAVY = ["torch", "transformers", "faiss", "segment_anything", "langgraph"]


def heavy_after(code: str) -> str:
    script = f"import sys\n{code}\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip() + out.stderr


def test_core_import_does_not_pull_heavy_libraries():
    assert heavy_after("import evlf, evlf.core, evlf.core.plugins, evlf.core.imaging") == "[]"


def test_listing_plugins_and_registries_does_not_pull_heavy_libraries():
    code = (
        "from evlf.core.plugins import get_host\n"
        "host = get_host()\n"
        "regs = host.registries\n"
        "assert {'full', 'direct', 'rag', 'panel'} <= set(regs.graphs.names()), regs.graphs.names()\n"
        "assert {'tiny', 'transformers', 'openai', 'demo'} <= set(regs.backends.names()), regs.backends.names()\n"
        "host.plugin_infos()"
    )
    assert heavy_after(code) == "[]"

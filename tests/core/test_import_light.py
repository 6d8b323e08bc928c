"""`import evlf` and `import evlf.core` must stay light: no torch, transformers, faiss or SAM."""

import subprocess
import sys

HEAVY = ["torch", "transformers", "faiss", "segment_anything"]


def test_core_import_does_not_pull_heavy_libraries():
    code = (
        "import sys, evlf, evlf.core, evlf.core.plugins, evlf.core.imaging;"
        "evlf.core.plugins.get_host().registries;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

"""The console script leaves without the interpreter's teardown, yet its output and exit codes are whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_console_script_flushes_output_and_keeps_exit_codes(tmp_path: Path) -> None:
    version = subprocess.run([sys.executable, "-m", "evlf", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("evlf ") and version.stdout.endswith("\n")
    listed = subprocess.run([sys.executable, "-m", "evlf", "graphs", "list", "--json"], capture_output=True, text=True)
    assert listed.returncode == 0 and '"full"' in listed.stdout and listed.stdout.rstrip().endswith("]")
    missing = subprocess.run([sys.executable, "-m", "evlf", "info", str(tmp_path / "absent.dcm")], capture_output=True, text=True)
    assert missing.returncode == 2 and "absent.dcm" in missing.stderr and "Traceback" not in missing.stderr

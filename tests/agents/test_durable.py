"""A run killed mid-graph (a real process, SIGKILL) resumes where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evlf.agents.pipeline import Pipeline
from evlf.core.types import Study

CHILD = Path(__file__).with_name("durable_child.py")


def test_killed_run_resumes_without_repeating_finished_steps(images, tmp_path, scripted):
    db, marker = tmp_path / "runs.sqlite", tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    child = subprocess.Popen([sys.executable, str(CHILD), str(images["chest"]), str(db), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the child process died before reaching refinement"
            assert time.monotonic() < deadline, "the child never reached refinement"
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    backend = scripted(["a model call here would mean the finished reasoning step was repeated"])
    seen: list[str] = []
    report = Pipeline("full", backend=backend, checkpoint=db).run(
        Study.from_paths([images["chest"]], id="durable-1"), on_update=lambda u: seen.append(u.node)
    )
    assert backend.calls == 0
    assert "ingest" not in seen and "triage" not in seen and "reason" not in seen
    assert "refine" in seen and "report" in seen
    assert report.diagnosis.primary == "pulmonary nodule"
    assert report.findings[0].refined_box is not None  # refinement ran in the resumed process

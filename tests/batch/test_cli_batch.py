"""`evlf batch` from the command line: a summary, results.jsonl, reports, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys


def _evlf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evlf", *args], capture_output=True, text=True)


def test_cli_batch_runs_a_folder_and_resumes(tmp_path, images):
    import shutil

    folder = tmp_path / "cohort"
    folder.mkdir()
    shutil.copyfile(images["fundus"], folder / "eye.png")
    shutil.copyfile(images["corrupt"], folder / "bad.png")
    out = tmp_path / "out"
    args = ("batch", str(folder), "--out", str(out), "--backend", "tiny", "--graph", "direct", "-k", "0", "--max-new-tokens", "96")
    proc = _evlf(*args, "--export", "json", "--export", "markdown", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) | {"wall_s": 0} == {"total": 2, "skipped": 0, "ok": 1, "failed": 1, "wall_s": 0}
    rows = {r["id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert rows["eye.png"]["status"] == "ok" and (out / rows["eye.png"]["reports"]["markdown"]).is_file()
    assert rows["bad.png"]["status"] == "failed" and "bad.png" in proc.stderr
    (folder / "bad.png").unlink()
    proc = _evlf(*args, "--export", "json", "--export", "markdown")  # all done: no model is even loaded
    assert proc.returncode == 0 and "1 of 1 studies already done" in proc.stderr
    assert "0 reported, 0 failed, 1 already done of 1" in proc.stdout


def test_cli_batch_bad_input_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"id": "a"}\nnot json\n')
    proc = _evlf("batch", str(bad), "--out", str(tmp_path / "o"), "--backend", "tiny")
    assert proc.returncode == 2 and str(bad) in proc.stderr and "line 1" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _evlf("batch", str(bad), "--out", str(tmp_path / "o"), "--engine", "spark")
    assert proc.returncode == 2 and "unknown engine 'spark'" in proc.stderr

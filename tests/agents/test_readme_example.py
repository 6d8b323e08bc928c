"""The README's Python example runs as written, with the demo model and with a local model directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from evlf.core.plugins import get_host

README = Path(__file__).parents[2] / "README.md"
PLACEHOLDER = 'backend="transformers", model="/models/Qwen2.5-VL-7B-Instruct"'


def python_api_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("which", ["demo", "model-dir"])
def test_readme_python_example_runs(which, images, tmp_path, monkeypatch):
    shutil.copyfile(images["chest"], tmp_path / "chest.dcm")
    shutil.copyfile(images["fundus"], tmp_path / "fundus.png")
    monkeypatch.chdir(tmp_path)
    code = python_api_example()
    assert PLACEHOLDER in code
    if which == "demo":
        code = code.replace(PLACEHOLDER, 'backend="demo"')
    else:
        model_dir = get_host().registries.backends.get("tiny")().path  # a real model directory on disk
        code = code.replace("/models/Qwen2.5-VL-7B-Instruct", str(model_dir))
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    report, reports = scope["report"], scope["reports"]
    assert report.task == "vqa" and report.provenance.model_calls >= 1
    assert [r.specialties[0] for r in reports] == ["pulmonology", "ophthalmology"]
    assert report.provenance.backend == ("demo" if which == "demo" else "transformers")

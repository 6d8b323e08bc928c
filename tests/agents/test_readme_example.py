"""The README's Python example, which tests/test_docs_examples.py runs as written with the demo model, also runs with a local model directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from evlf.core.plugins import get_host

README = Path(__file__).parents[2] / "README.md"
AS_WRITTEN = 'backend="demo"'


def python_api_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_example_runs_with_a_model_directory(images, tmp_path, monkeypatch):
    folder = tmp_path / "examples" / "images"
    folder.mkdir(parents=True)
    shutil.copyfile(images["chest"], folder / "chest_cr.dcm")
    shutil.copyfile(images["fundus"], folder / "fundus.png")
    monkeypatch.chdir(tmp_path)
    code = python_api_example()
    assert AS_WRITTEN in code
    model_dir = get_host().registries.backends.get("tiny")().path  # a real model directory on disk
    code = code.replace(AS_WRITTEN, f'backend="transformers", model="{model_dir}"')
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    report, reports = scope["report"], scope["reports"]
    assert report.task == "vqa" and report.provenance.model_calls >= 1
    assert [r.specialties[0] for r in reports] == ["pulmonology", "ophthalmology"]
    assert report.provenance.backend == "transformers"

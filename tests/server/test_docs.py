"""docs/server.md: its Python client example runs against a live server, and its tables name every form field and limit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydicom.data import get_testdata_file

from evlf.server import ServerSettings
from evlf.server.uploads import FILE_FIELD, FORM_FIELDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def test_the_python_example_runs(live, tmp_path, monkeypatch, capsys):
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    shutil.copyfile(get_testdata_file("CT_small.dcm"), tmp_path / "study.dcm")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("http://127.0.0.1:8765", live.url), str(DOC), "exec"), {})
    assert "radiology" in capsys.readouterr().out


def test_every_field_and_limit_is_documented():
    text = DOC.read_text()
    for name in (FILE_FIELD, *FORM_FIELDS):
        assert f"| `{name}` |" in text, name
    for name in ServerSettings.model_fields:
        if name.startswith(("max_", "rate_limit", "request_", "batch_", "shutdown_")):
            assert f"`{name}`" in text, name

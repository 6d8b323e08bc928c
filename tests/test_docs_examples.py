"""The README's and the docs' code blocks run as written, so a false example fails CI.

Every ```python block runs, each file's blocks in order in one namespace (a
later block may use an earlier one's imports), in a scratch folder holding the
example images `make demo` writes. Every ```sh block's `evlf ...` lines run
through the CLI and must exit 0. A block that cannot run carries a
`<!-- not-run: reason -->` line just above it (a running server, an install,
a synopsis with placeholders); there must be few.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from evlf.cli import app
from evlf.cli.common import run_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:^<!-- not-run: (?P<reason>[^>]+?) -->\n)?^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.M | re.S)
MAX_EXEMPT_PYTHON = 3  # Python examples run: only a few may be exempt
MAX_EXEMPT_SHARE = 0.55  # shell blocks include deployment recipes (vLLM, Ray, Kubernetes, a live server); still about half of all blocks at most


def blocks(path: Path, lang: str) -> list[tuple[str, str | None]]:
    """(code, reason it does not run) of each `lang` block."""
    return [(m["body"], m["reason"]) for m in FENCE.finditer(path.read_text()) if m["lang"] == lang]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like a fresh clone after `make demo`: examples/images/, and no case store."""
    spec = importlib.util.spec_from_file_location("fetch_examples", ROOT / "examples" / "fetch_examples.py")
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    fetch.OUT = tmp_path / "examples" / "images"
    assert fetch.main() == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVLF_CASE_STORE", str(tmp_path / "no-store"))
    return tmp_path


@pytest.mark.parametrize("doc", [p for p in DOCS if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(doc: Path, scratch: Path) -> None:
    scope: dict[str, object] = {"__name__": f"docs_{doc.stem}"}
    for n, (code, reason) in enumerate(blocks(doc, "python"), start=1):
        if reason is None:
            exec(compile(code, f"{doc.name} python block {n}", "exec"), scope)


@pytest.mark.parametrize("doc", [p for p in DOCS if blocks(p, "sh")], ids=lambda p: p.name)
def test_shell_blocks_run_through_the_cli(doc: Path, scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for code, reason in blocks(doc, "sh"):
        if reason is not None:
            continue
        for line in code.replace("\\\n", " ").splitlines():  # a trailing backslash continues the line
            words = shlex.split(line, comments=True)
            if not words:
                continue
            assert words[0] == "evlf", f"{doc.name}: {line!r} is not an evlf command (mark the block not-run with a reason)"
            code_ = run_app(app, words[1:])
            err = capsys.readouterr().err
            assert code_ == 0, f"{doc.name}: {line!r} exited {code_}: {err}"


def test_few_blocks_are_exempt_and_each_says_why() -> None:
    every = [(doc.name, reason) for doc in DOCS for lang in ("python", "sh") for _, reason in blocks(doc, lang)]
    exempt = [(name, reason) for name, reason in every if reason]
    assert len(exempt) <= MAX_EXEMPT_SHARE * len(every), exempt
    python_exempt = [(doc.name, reason) for doc in DOCS for _, reason in blocks(doc, "python") if reason]
    assert len(python_exempt) <= MAX_EXEMPT_PYTHON, python_exempt
    assert all(len(reason.split()) >= 2 for _, reason in exempt)

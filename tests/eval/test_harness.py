"""The eval runner's bookkeeping, driven by a test double of the Pipeline.

FakePipeline is NOT a model: it asks a scripted backend for each study (one
batched call per run_many, as a real pipeline's micro-batcher would) and turns
the scripted reply into a Report. It exists to test resuming, caching,
summaries and plots, not to claim any accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from evlf.cli import app
from evlf.cli.common import run_app
from evlf.core.answer import AnswerFinding, EvlfAnswer
from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity, Turn
from evlf.core.errors import InputError
from evlf.core.types import Box, Diagnosis, Finding, Provenance, Report, Study
from evlf.eval.harness import evaluate, plan_runs
from evlf.eval.runner import RunSpec

# case id -> (label the scripted backend answers, box it draws or None)
SCRIPT = {
    "c0": ("Cyst", [0, 0, 10, 10]),  # right label (case differs), exact box
    "c1": ("mass", [0, 0, 5, 10]),  # wrong label, IoU 0.5
    "c2": ("normal", None),  # right
    "c3": ("cyst", [20, 20, 30, 30]),  # right label, box misses
    "c4": ("banana", None),  # outside the label set
    "c5": ("mass", [0, 0, 10, 10]),  # right
}
TRUTH = [
    {"id": "c0", "label": "cyst", "boxes": [[0, 0, 10, 10]], "modality": "CT"},
    {"id": "c1", "label": "cyst", "boxes": [[0, 0, 10, 10]], "modality": "CT"},
    {"id": "c2", "label": "normal", "boxes": [], "modality": "MR"},
    {"id": "c3", "label": "cyst", "boxes": [[0, 0, 10, 10]], "modality": "MR"},
    {"id": "c4", "label": "mass", "boxes": [[0, 0, 10, 10]], "modality": "MR"},
    {"id": "c5", "label": "mass", "boxes": [[0, 0, 10, 10]], "modality": "CT"},
]


class ScriptedBackend(Backend):
    """Test double: answers from SCRIPT by the study id in the prompt; counts what reaches it."""

    name: ClassVar[str] = "scripted"

    def __init__(self) -> None:
        self.requests: list[str] = []

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(name="scripted-test-double", family="test", trained=False)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out = []
        for r in requests:
            case_id = r.turns[-1].text.split()[-1]
            self.requests.append(case_id)
            label, box = SCRIPT[case_id]
            findings = [AnswerFinding(label=label, box=box)] if box else []
            answer = EvlfAnswer(diagnosis=label, findings=findings)
            out.append(Generation(text=answer.model_dump_json(), answer=answer, tokens_in=10, tokens_out=5, model=self.identity))
        return out


class FakePipeline:
    """Test double of evlf.agents.pipeline.Pipeline for the runner (see module docstring)."""

    def __init__(self, spec: RunSpec, backend: Backend | None, interrupt_after: int | None = None) -> None:
        assert backend is not None
        self.spec, self.backend = spec, backend
        self.calls = 0
        self.interrupt_after = interrupt_after

    def run_many(self, studies: list[Study], concurrency: int = 4) -> list[Report]:
        reqs = []
        for s in studies:
            pixels = np.asarray(Image.open(s.images[0].path).convert("RGB"))
            reqs.append(GenerationRequest(turns=[Turn(role="user", text=f"{self.spec.graph} {s.id}", images=[pixels])]))
        gens = self.backend.generate(reqs)
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        reports = []
        for s, g in zip(studies, gens, strict=True):
            assert g.answer is not None
            findings = [Finding(label=f.label, boxes=[Box(x0=f.box[0], y0=f.box[1], x1=f.box[2], y1=f.box[3])]) for f in g.answer.findings if f.box]
            prov = Provenance(evlf_version="test", model_id=g.model.name, trained=False, backend="scripted", graph=self.spec.graph,
                              model_calls=1, tokens_in=g.tokens_in, tokens_out=g.tokens_out, timings_ms={"total": 3.0})
            reports.append(Report(study_id=s.id, task=s.task, diagnosis=Diagnosis(primary=g.answer.diagnosis), findings=findings, provenance=prov))
        return reports


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    lines = []
    for i, row in enumerate(TRUTH):
        Image.fromarray(np.full((32, 32), 10 * i, np.uint8)).save(tmp_path / "img" / f"{row['id']}.png")
        lines.append(json.dumps({**row, "images": [f"img/{row['id']}.png"], "task": "grounding"}))
    path = tmp_path / "ds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_eval(dataset: Path, out: Path, backend: ScriptedBackend, interrupt_after: int | None = None, **kw: object) -> dict:
    specs = plan_runs(["direct", "full"], [])
    return evaluate(
        str(dataset), specs, out, concurrency=2, n_boot=100, progress=False,
        pipeline_factory=lambda spec, b: FakePipeline(spec, b, interrupt_after),
        backend_factory=lambda ctx: backend, **kw,  # type: ignore[arg-type]
    )


def test_eval_writes_predictions_summary_tables_and_plots(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    backend = ScriptedBackend()
    summary = run_eval(dataset, out, backend)
    direct = summary["graphs"]["direct"]
    # labels: c0 right (case-insensitive), c1 wrong, c2 right, c3 right, c4 outside the set, c5 right
    assert direct["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert direct["overall"]["n_no_answer"] == 1
    # IoU entries: c0 1.0, c1 0.5, c3 0, c4 0 (no box), c5 1.0; c2 has none
    assert direct["overall"]["miou"] == pytest.approx(2.5 / 5)
    assert direct["overall"]["acc50"] == pytest.approx(3 / 5)
    assert direct["by_modality"]["CT"]["accuracy"] == pytest.approx(2 / 3)
    assert direct["model_calls_per_case"] == 1 and direct["tokens_in_per_case"] == 10
    assert direct["latency_ms"]["median"] == 3.0 and direct["untrained"] is True
    assert summary["comparisons"][0]["a"] == "direct" and summary["comparisons"][0]["accuracy"]["diff"] == 0.0
    assert sorted(backend.requests) == sorted(list(SCRIPT) * 2)

    for name in ("summary.json", "summary.md", "summary.csv", "metrics_by_modality.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "summary.md").read_text()
    assert "| direct | modality=CT | 3 |" in md and "Untrained model" in md
    assert (out / "summary.csv").read_text().splitlines()[0].startswith("graph,group,n_cases,accuracy")

    # the predictions file re-scores to the same numbers with `evlf score`
    pred = out / "direct" / "predictions.jsonl"
    assert json.loads(pred.read_text().splitlines()[0])["label"] == "cyst"
    code = run_app(app, ["score", "--pred", str(pred), "--truth", str(dataset), "--json", "--lenient-labels", "--bootstrap", "100"])
    rescored = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("accuracy", "f1_macro", "miou", "acc50"):
        assert rescored["overall"][key] == pytest.approx(direct["overall"][key])
    assert rescored["by_modality"]["MR"]["miou"] == pytest.approx(direct["by_modality"]["MR"]["miou"])


def test_interrupted_eval_resumes_without_repeating_model_calls(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    backend = ScriptedBackend()
    with pytest.raises(KeyboardInterrupt):
        run_eval(dataset, out, backend, interrupt_after=1)  # second chunk: model called, then interrupted
    written = (out / "direct" / "predictions.jsonl").read_text().splitlines()
    assert len(written) == 2  # the first chunk of two cases
    assert len(backend.requests) == 4
    summary = run_eval(dataset, out, backend)
    direct = summary["graphs"]["direct"]
    assert direct["run"]["resumed"] == 2 and direct["run"]["ran"] == 4
    assert direct["run"]["cache_hits"] == 2  # the interrupted chunk came from the cache
    # every (graph, case) reached the backend exactly once over both runs
    assert sorted(backend.requests) == sorted(list(SCRIPT) * 2)
    # a third run is all cached and all resumed
    again = run_eval(dataset, out, backend)
    assert again["graphs"]["full"]["run"]["ran"] == 0 and len(backend.requests) == 12
    assert again["graphs"]["direct"]["overall"] == summary["graphs"]["direct"]["overall"]


def test_failed_cases_are_recorded_and_retried(dataset: Path, tmp_path: Path) -> None:
    class Flaky(FakePipeline):
        broken = True

        def run_many(self, studies: list[Study], concurrency: int = 4) -> list[Report]:
            if Flaky.broken and any(s.id == "c3" for s in studies):
                raise RuntimeError("boom")
            return super().run_many(studies, concurrency)

    out = tmp_path / "out"
    backend = ScriptedBackend()
    specs = [RunSpec(name="full", graph="full")]
    kw = dict(concurrency=2, n_boot=0, progress=False, backend_factory=lambda ctx: backend)
    s1 = evaluate(str(dataset), specs, out, pipeline_factory=lambda sp, b: Flaky(sp, b), **kw)  # type: ignore[arg-type]
    assert s1["graphs"]["full"]["n_failed"] == 1
    assert s1["graphs"]["full"]["overall"]["n_no_answer"] == 2  # c3 failed, c4 outside the set
    Flaky.broken = False
    s2 = evaluate(str(dataset), specs, out, pipeline_factory=lambda sp, b: Flaky(sp, b), **kw)  # type: ignore[arg-type]
    assert s2["graphs"]["full"]["n_failed"] == 0 and s2["graphs"]["full"]["run"]["ran"] == 1


def test_limit_and_a_changed_run_refuses_to_mix(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    backend = ScriptedBackend()
    s = run_eval(dataset, out, backend, limit=3)
    assert s["n_cases"] == 3 and s["graphs"]["full"]["overall"]["n_cases"] == 3
    with pytest.raises(InputError, match="different run"):
        evaluate(str(dataset), [RunSpec(name="full", graph="full", context={"seed": 3})], out, n_boot=0, progress=False,
                 pipeline_factory=lambda sp, b: FakePipeline(sp, b), backend_factory=lambda ctx: backend)


def test_plan_runs() -> None:
    assert [s.name for s in plan_runs(["direct", "full"], [])] == ["direct", "full"]
    specs = plan_runs(["full"], [("a", {"n_exemplars": 0}), ("b", {"n_exemplars": 4})], backend="tiny")
    assert [(s.name, s.context) for s in specs] == [("full@a", {"n_exemplars": 0, "backend": "tiny"}), ("full@b", {"n_exemplars": 4, "backend": "tiny"})]
    with pytest.raises(InputError, match="do not pair up"):
        plan_runs(["a", "b", "c"], [("x", {}), ("y", {})])


def test_eval_cli_bad_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, ["eval", str(tmp_path / "nope.jsonl"), "--graph", "direct", "--out", str(tmp_path / "o")])
    assert code == 2 and "no such dataset file" in capsys.readouterr().err


def test_folder_of_images_with_csv(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = dataset.parent / "img"
    (folder / "labels.csv").write_text("image,label,modality\n" + "".join(f"{r['id']}.png,{r['label']},{r['modality']}\n" for r in TRUTH))
    out = tmp_path / "out"
    backend = ScriptedBackend()
    summary = evaluate(str(folder), [RunSpec(name="direct", graph="direct")], out, n_boot=0, progress=False,
                       pipeline_factory=lambda sp, b: FakePipeline(sp, b), backend_factory=lambda ctx: backend)
    overall = summary["graphs"]["direct"]["overall"]
    assert overall["accuracy"] == pytest.approx(4 / 6) and overall["miou"] is None  # no boxes in a CSV
    code = run_app(app, ["score", "--pred", str(out / "direct" / "predictions.jsonl"), "--truth", str(out / "truth.jsonl"),
                         "--json", "--lenient-labels", "--bootstrap", "0"])
    assert code == 0 and json.loads(capsys.readouterr().out)["overall"]["accuracy"] == pytest.approx(4 / 6)


def test_context_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evlf.eval.harness import load_context_file

    good = tmp_path / "few.json"
    good.write_text(json.dumps({"n_exemplars": 0, "verify_rounds": 2}))
    assert load_context_file(good) == {"n_exemplars": 0, "verify_rounds": 2}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"n_exemplars": 0, "no_such_setting": 1}))
    with pytest.raises(InputError, match="no_such_setting"):
        load_context_file(bad)
    code = run_app(app, ["eval", "lesions-test", "--graph", "full", "--context-file", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2 and "bad.json" in capsys.readouterr().err

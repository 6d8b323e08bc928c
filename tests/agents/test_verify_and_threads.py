"""The verify node runs a specialty's own checks; checkpoint threads follow the study's content and the configuration."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from evlf.agents.pipeline import Pipeline
from evlf.agents.request import BOX_WORDING, specialty_options
from evlf.core.geometry import BoxConvention
from evlf.core.hookspecs import hookimpl
from evlf.core.plugins import get_host
from evlf.core.specialty import Specialty
from evlf.core.types import CheckIssue, Study


class Strict(Specialty):
    """A specialty whose own check always objects; its plugin implements no report_checks hook."""

    name = "strict-test"
    modalities = ("DX", "CR")

    def score(self, study, images) -> float:
        return 0.0

    def checks(self, report, images) -> list[CheckIssue]:
        return [CheckIssue(check="strict", severity="warning", message="the strict specialty's own check ran")]


def strict_plugin(with_hook: bool = False) -> types.SimpleNamespace:
    specialty = Strict()

    @hookimpl
    def register_specialties(register: Callable[[Any], None]) -> None:
        register(specialty)

    @hookimpl
    def report_checks(report, images) -> list[CheckIssue]:  # what the built-in plugins do
        return specialty.checks(report, images) if specialty.name in report.specialties else []

    hooks: dict[str, Any] = {"register_specialties": register_specialties}
    if with_hook:
        hooks["report_checks"] = report_checks
    return types.SimpleNamespace(**hooks)


def run_strict(images, scripted, with_hook: bool) -> Any:
    host = get_host()
    host.register(strict_plugin(with_hook), name="strict_test_plugin")
    try:
        study = Study.from_paths([images["chest"]], id="strict", specialty="strict-test")
        return Pipeline("full", backend=scripted(), verify_rounds=0, n_exemplars=0).run(study)
    finally:
        host.unregister("strict_test_plugin")


def test_verify_runs_the_specialtys_own_checks_without_a_hook(images, scripted):
    report = run_strict(images, scripted, with_hook=False)
    assert report.specialties == ["strict-test"]
    assert "strict-test: the strict specialty's own check ran" in report.warnings


def test_a_hook_that_reruns_the_specialtys_checks_lists_them_once(images, scripted):
    report = run_strict(images, scripted, with_hook=True)
    assert report.warnings.count("strict-test: the strict specialty's own check ran") == 1


def test_options_carry_the_backends_box_format():
    specialty = get_host().registries.specialties.get("pulmonology")
    options = specialty_options(specialty, BoxConvention.GRID_1000)
    assert options.box_format == BOX_WORDING[BoxConvention.GRID_1000]


def test_checkpoint_resumes_only_an_unchanged_study_and_configuration(images, tmp_path, scripted):
    image = tmp_path / "chest.dcm"
    image.write_bytes(images["chest"].read_bytes())
    db = tmp_path / "runs.sqlite"
    study = Study.from_paths([image], id="same-id")

    def calls(**settings: Any) -> int:
        backend = scripted()
        Pipeline("direct", backend=backend, checkpoint=db, **settings).run(study)
        return backend.calls

    assert calls() == 1
    assert calls() == 0  # unchanged: the stored report
    assert calls(seed=7) == 1  # another configuration runs again
    image.write_bytes(images["chest"].read_bytes() + b"\0")  # the same path, other content
    assert calls() == 1
    assert calls() == 0

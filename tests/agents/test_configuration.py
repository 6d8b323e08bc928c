"""The Python API as the README documents it: names or instances, defaults in one place, bad settings refused early."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evlf.agents import defaults
from evlf.agents.context import Context
from evlf.agents.pipeline import Pipeline
from evlf.core.errors import ConfigError
from evlf.core.types import Study


def test_defaults_are_the_demo_model_and_the_full_graph():
    assert Context().backend == "demo" and Context().refiner == "classical" and Context().constrained is True
    assert Pipeline().graph_name == "full" and Pipeline().context.backend == "demo"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"backend": "nope"}, "unknown backend 'nope'"),
        ({"refiner": "nope"}, "unknown refiner 'nope'"),
        ({"backend": "transformers"}, "needs a model: pass model=DIR"),
        ({"backend": "transformers", "model": "/no/such/model"}, "/no/such/model: no such model directory"),
        ({"n_exemplar": 3}, "n_exemplar"),
        ({"backend": 3}, "backend= takes a registered name or an instance"),
    ],
)
def test_bad_configuration_is_refused_when_the_pipeline_is_built(kwargs, says):
    with pytest.raises(ConfigError) as err:
        Pipeline("direct", **kwargs)
    assert says in str(err.value)


def test_unknown_graph_is_refused():
    with pytest.raises(ConfigError, match="unknown graph 'nope'"):
        Pipeline("nope")


def test_missing_demo_weights_say_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.setattr(defaults, "demo_model_dir", lambda: tmp_path)
    with pytest.raises(ConfigError) as err:
        Pipeline("direct")
    assert "backend='transformers', model=DIR" in str(err.value) and "backend='tiny'" in str(err.value)
    Pipeline("direct", backend="tiny")  # asked for by name: fine


def test_backend_by_name_and_the_demo_banner_follows_the_weights(images):
    study = Study.from_paths([images["chest"]], id="by-name")
    demo = Pipeline("direct", backend="demo", n_exemplars=0).run(study)
    assert demo.provenance.backend == "demo" and demo.provenance.model_id == defaults.DEMO_MODEL_NAME
    same_weights = Pipeline("direct", backend="transformers", model=str(defaults.demo_model_dir()), n_exemplars=0).run(study)
    assert same_weights.provenance.backend == "transformers"
    assert same_weights.provenance.model_id == defaults.DEMO_MODEL_NAME  # the banner's trigger, decided by the hash
    assert same_weights.provenance.weights_sha256 == demo.provenance.weights_sha256 == defaults.demo_weights_sha256()


def test_backend_instance_names_itself_in_the_report(images, scripted):
    report = Pipeline("direct", backend=scripted()).run(Study.from_paths([images["chest"]], id="inst"))
    assert report.provenance.backend == "scripted" and report.provenance.model_id == "scripted-test-double"


def test_a_question_through_the_api_asks_for_an_answer(images):
    asked = Study.from_paths([images["chest"]], question="Is there a nodule?")
    assert asked.task == "vqa"
    assert Study.from_paths([images["chest"]], question="Is there a nodule?", task="grounding").task == "grounding"
    assert Study.from_paths([images["chest"]]).task == "diagnosis"


def test_cli_refuses_a_bad_backend_before_reading_any_image(tmp_path):
    missing = tmp_path / "not-read.png"  # never created: the configuration is checked first
    proc = subprocess.run([sys.executable, "-m", "evlf", "diagnose", str(missing), "--backend", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown backend 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "evlf", "diagnose", str(missing), "--backend", "transformers"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--model DIR" in proc.stderr

"""Fixtures for graph tests: real bundled images and a scripted backend.

`ScriptedBackend` is a test double for the model: it replays fixed EVLF
replies so the graph's own logic (grounding, refinement, verification loop,
aggregation, batching) can be checked exactly. End-to-end tests with the real
(tiny, untrained) model live beside these.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity
from evlf.core.geometry import BoxConvention
from evlf.core.output import parse_output
from evlf.core.errors import ParseError

NODULE_REPLY = (
    "<think>There is a round opacity in the right upper zone, a pulmonary nodule. "
    "No other abnormality.</think>"
    '<answer>{"diagnosis": "pulmonary nodule", "confidence": 0.7, '
    '"differential": [{"label": "pneumonia", "probability": 0.2}], '
    '"findings": [{"label": "pulmonary nodule", "confidence": 0.6, "box": [0.25, 0.25, 0.5, 0.5]}]}</answer>'
)


class ScriptedBackend(Backend):
    """Replays `replies` in order (the last one repeats); records every batch it was sent."""

    name = "scripted"

    def __init__(self, replies: list[str] | None = None, convention: BoxConvention = BoxConvention.UNIT) -> None:
        self.replies = list(replies or [NODULE_REPLY])
        self.convention = convention
        self.batches: list[list[GenerationRequest]] = []
        self.calls = 0

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(name="scripted-test-double", family="test", trained=False, box_convention=self.convention)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        self.batches.append(requests)
        out = []
        for request in requests:
            text = self.replies[min(self.calls, len(self.replies) - 1)]
            self.calls += 1
            sizes = [(img.shape[1], img.shape[0]) for img in request.turns[-1].images]
            try:
                parsed = parse_output(text)
                out.append(Generation(text=text, answer=parsed.answer, think=parsed.think, model=self.identity, image_sizes=sizes, tokens_out=10))
            except ParseError as exc:
                out.append(Generation(text=text, error=exc.problem, model=self.identity, image_sizes=sizes, tokens_out=10))
        return out


@pytest.fixture
def scripted():
    return ScriptedBackend


@pytest.fixture
def nodule_reply():
    return NODULE_REPLY


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """The bundled example images, written from the packages that ship them."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("images")
    out = {}
    for key, name in {"chest": "RG1_UNCR.dcm", "ct": "CT_small.dcm", "mr": "MR_small.dcm"}.items():
        out[key] = root / name
        shutil.copyfile(get_testdata_file(name), out[key])
    out["fundus"] = root / "fundus.png"
    Image.fromarray(data.retina()[::4, ::4]).save(out["fundus"])
    out["ihc"] = root / "ihc.png"
    Image.fromarray(data.immunohistochemistry()).save(out["ihc"])
    return out


@pytest.fixture(autouse=True)
def _no_default_case_store(tmp_path, monkeypatch):
    """Point retrieval at an empty location unless a test builds a store."""
    monkeypatch.setenv("EVLF_CASE_STORE", str(tmp_path / "no-store"))

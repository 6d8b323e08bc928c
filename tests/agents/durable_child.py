"""Child process for the durable-run test: answers once, then hangs inside refinement until killed.

Run as: python durable_child.py IMAGE CHECKPOINT MARKER
"""

import sys
import time
from pathlib import Path

from evlf.agents.pipeline import Pipeline
from evlf.core.backends.base import Backend, Generation, ModelIdentity
from evlf.core.geometry import BoxConvention
from evlf.core.output import parse_output
from evlf.core.refine import Refiner
from evlf.core.types import Study

REPLY = (
    "<think>A round pulmonary nodule.</think>"
    '<answer>{"diagnosis": "pulmonary nodule", "confidence": 0.7, '
    '"findings": [{"label": "pulmonary nodule", "confidence": 0.6, "box": [0.25, 0.25, 0.5, 0.5]}]}</answer>'
)


class OneReply(Backend):
    name = "one-reply"

    @property
    def identity(self):
        return ModelIdentity(name="scripted-test-double", family="test", trained=False, box_convention=BoxConvention.UNIT)

    def generate(self, requests):
        parsed = parse_output(REPLY)
        return [Generation(text=REPLY, answer=parsed.answer, think=parsed.think, model=self.identity) for _ in requests]


class HangingRefiner(Refiner):
    name = "hanging"

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def refine(self, image, boxes):
        self.marker.write_text("refine started")
        time.sleep(600)
        raise RuntimeError("should have been killed")


if __name__ == "__main__":
    image, checkpoint, marker = sys.argv[1:4]
    study = Study.from_paths([image], id="durable-1")
    Pipeline("full", backend=OneReply(), refiner=HangingRefiner(Path(marker)), checkpoint=checkpoint).run(study)

"""Ingest: decode every image once (guards included) and record what was loaded."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.runtime import RunContext
from evlf.agents.state import State
from evlf.agents.timing import timed
from evlf.core.types import ImageSummary


@timed("ingest")
def ingest(state: State, runtime: Runtime[RunContext]) -> dict[str, Any]:
    images = runtime.context.images(state["study"])
    return {
        "images": [
            ImageSummary(
                path=str(im.path),
                sha256=im.sha256,
                width=im.width,
                height=im.height,
                frames=im.frames,
                frame_index=im.frame_index,
                modality=im.meta.modality,
                body_part=im.meta.body_part,
            )
            for im in images
        ]
    }

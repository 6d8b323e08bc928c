"""`--engine local`: one Pipeline in this process, studies in chunks through `run_many`.

A chunk holds `concurrency` studies: they run concurrently and their model
calls are batched together; each chunk's outcomes are handed back (and
written) before the next chunk starts, so a kill loses at most one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from evlf.batch.work import Job, Outcome, make_pipeline, run_chunk


def run_local(
    jobs: Sequence[Job],
    graph: str,
    settings: dict[str, Any],
    *,
    concurrency: int = 4,
    pipeline: Any | None = None,
    audit: str | None = None,
) -> Iterator[Outcome]:
    """Outcomes of the jobs, chunk by chunk; `pipeline` reuses a loaded one (tests, notebooks)."""
    if not jobs:
        return
    pipe = pipeline if pipeline is not None else make_pipeline(graph, settings, audit)
    step = max(1, concurrency)
    for first in range(0, len(jobs), step):
        yield from run_chunk(pipe, jobs[first : first + step], step)

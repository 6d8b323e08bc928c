"""Pipeline benchmark with the tiny backend: the graph's own overhead, and run_many against the backend's batching.

- overhead per study: wall time of `Pipeline.run` minus the time inside model
  calls (and refinement, embedding), over sequential single-study runs;
- run_many over N studies against the backend alone answering the very same
  requests in batches of the same size.

Prints its figures; the last line is one JSON object with the headline numbers.
Usage: python benchmarks/pipeline.py [--studies 64] [--graph direct]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed_backend(inner):
    from evlf.core.backends.base import Backend

    class TimedBackend(Backend):
        name = "timed"

        def __init__(self) -> None:
            self.seconds = 0.0
            self.requests: list = []
            self.batches: list[int] = []

        @property
        def identity(self):
            return inner.identity

        def generate(self, requests):
            start = time.perf_counter()
            out = inner.generate(requests)
            self.seconds += time.perf_counter() - start
            self.requests.extend(requests)
            self.batches.append(len(requests))
            return out

    return TimedBackend()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=16)
    parser.add_argument("--graph", default="direct")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    from evlf.agents.pipeline import Pipeline
    from evlf.plugins.backends.tiny import TinyBackend
    from evlf.core.types import Study

    tmp = Path(tempfile.mkdtemp(prefix="evlf-bench-"))
    os.environ["EVLF_CASE_STORE"] = str(tmp / "no-store")
    import shutil

    from pydicom.data import get_testdata_file

    image = tmp / "ct.dcm"
    shutil.copyfile(get_testdata_file("CT_small.dcm"), image)

    tiny = TinyBackend()
    backend = timed_backend(tiny)
    ctx = {"max_new_tokens": args.max_new_tokens, "n_exemplars": 0}

    # warm-up: model build, first graph compile, imports
    Pipeline(args.graph, ctx, backend=backend).run(Study.from_paths([image], id="warm"))

    # 1. overhead per study, sequential runs
    backend.seconds = 0.0
    pipe = Pipeline(args.graph, ctx, backend=backend)
    walls = []
    model_s = []
    for i in range(args.sequential):
        before = backend.seconds
        start = time.perf_counter()
        report = pipe.run(Study.from_paths([image], id=f"seq-{i}"))
        walls.append(time.perf_counter() - start)
        model_s.append(backend.seconds - before)
    overheads_ms = [(w - m) * 1000 for w, m in zip(walls, model_s)]
    node_ms = report.provenance.timings_ms
    print(f"graph {args.graph}: {args.sequential} sequential studies")
    print(f"  wall per study      p50 {statistics.median(walls) * 1000:8.1f} ms")
    print(f"  model per study     p50 {statistics.median(model_s) * 1000:8.1f} ms")
    print(f"  overhead per study  p50 {statistics.median(overheads_ms):8.1f} ms  (includes image decode and routing)")
    print(f"  node timings of the last study (ms): {json.dumps(node_ms)}")

    # 2. run_many vs the backend alone on the same requests
    backend.seconds, backend.requests, backend.batches = 0.0, [], []
    studies = [Study.from_paths([image], id=f"many-{i}") for i in range(args.studies)]
    start = time.perf_counter()
    Pipeline(args.graph, ctx, backend=backend).run_many(studies, concurrency=args.studies)
    many_s = time.perf_counter() - start
    requests, batches = list(backend.requests), list(backend.batches)
    start = time.perf_counter()
    i = 0
    for size in batches:
        tiny.generate(requests[i : i + size])
        i += size
    direct_s = time.perf_counter() - start
    ratio = many_s / direct_s
    print(f"run_many over {args.studies} studies: {many_s:.2f} s in {len(batches)} batches {batches}")
    print(f"backend alone on the same requests and batches: {direct_s:.2f} s  -> ratio {ratio:.2f} (goal <= 1.2)")
    print(json.dumps({
        "graph": args.graph,
        "overhead_ms_per_study": round(statistics.median(overheads_ms), 2),
        "run_many_vs_backend": round(ratio, 3),
        "run_many_s": round(many_s, 3),
        "backend_s": round(direct_s, 3),
        "studies": args.studies,
    }))


if __name__ == "__main__":
    main()

"""`evlf batch` benchmark with the demo backend: local vs Ray engine throughput, and the cost of resuming a killed batch.

- studies per second for `--engine local` (one Pipeline, `--concurrency` 1 and
  2) and `--engine ray` (1 and 2 Pipeline actors, one study in flight each), on
  the same studies; the rate counts from the first finished study to the last,
  so model loading and actor start-up are reported apart (`start_s`);
- the Ray engine's overhead against local at the same parallelism
  (1 vs concurrency 1, 2 actors vs concurrency 2), goal under 15%;
- resume: `evlf batch` over 64 studies in a subprocess, killed (SIGKILL) once
  40 studies are in results.jsonl, then run again: how many studies the rerun
  ran, how many of them had been done before (goal 0), and its wall time.

Prints its figures; the last line is one JSON object.
Usage: python benchmarks/batch.py [--studies 16] [--backend demo] [--graph direct] [--resume-studies 64 --kill-at 40] [--skip-ray] [--part all|throughput|resume]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_images(root: Path) -> list[Path]:
    """A few small real images (CT, MR, fundus) from the packages that ship them."""
    from PIL import Image
    from pydicom.data import get_testdata_file
    from skimage import data

    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copyfile(get_testdata_file(name), root / name)
        paths.append(root / name)
    Image.fromarray(data.retina()[::8, ::8]).save(root / "fundus.png")
    paths.append(root / "fundus.png")
    return paths


def write_manifest(path: Path, images: list[Path], n: int, tag: str) -> Path:
    rows = [{"id": f"{tag}-{i:03d}", "images": [str(images[i % len(images)])], "question": f"Finding {i}?"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def timed_batch(manifest: Path, out: Path, options: Any, pipeline: Any = None) -> dict[str, float]:
    """Run one batch; the rate is measured between the first and the last finished study."""
    from evlf.batch import read_manifest, run_batch

    stamps: list[float] = []
    start = time.perf_counter()
    summary = run_batch(read_manifest(manifest), out, options, pipeline=pipeline, on_result=lambda _row: stamps.append(time.perf_counter()))
    if summary.failed:
        raise SystemExit(f"{summary.failed} studies failed in {out}: see results.jsonl")
    span = stamps[-1] - stamps[0]
    first_batch = max(1, options.concurrency * options.workers) if options.engine == "ray" else max(1, options.concurrency)
    counted = len(stamps) - min(first_batch, len(stamps) - 1)
    return {
        "studies": len(stamps),
        "wall_s": round(time.perf_counter() - start, 2),
        "start_s": round(stamps[0] - start, 2),
        "per_s": round(counted / span, 3) if span > 0 else float("nan"),
        "wall_per_s": round(len(stamps) / (time.perf_counter() - start), 3),
    }


def throughput(args: argparse.Namespace, tmp: Path, images: list[Path], settings: dict[str, Any]) -> dict[str, dict[str, float]]:
    from evlf.batch import BatchOptions
    from evlf.batch.work import make_pipeline

    manifest = write_manifest(tmp / "throughput.jsonl", images, args.studies, "t")
    t0 = time.perf_counter()
    pipeline = make_pipeline(args.graph, settings)
    from evlf.core.types import Study

    pipeline.run(Study.from_paths([images[0]], id="warm-up"))
    print(f"local pipeline load + first study: {time.perf_counter() - t0:.1f} s")
    figures: dict[str, dict[str, float]] = {}
    if not args.skip_ray:
        from evlf.batch.ray_engine import ensure_ray

        t0 = time.perf_counter()
        ensure_ray(None, num_cpus=2)
        print(f"ray.init (local, 2 CPUs): {time.perf_counter() - t0:.1f} s")
    # each parallelism level runs local then Ray back to back, so both see about the same machine load
    for level in (1, 2):
        opts = BatchOptions(graph=args.graph, settings=settings, concurrency=level)
        figures[f"local_c{level}"] = timed_batch(manifest, tmp / f"local-c{level}", opts, pipeline)
        print(f"local, concurrency {level}: {figures[f'local_c{level}']}")
        if args.skip_ray:
            continue
        opts = BatchOptions(graph=args.graph, settings=settings, concurrency=1, engine="ray", workers=level)
        figures[f"ray_w{level}"] = timed_batch(manifest, tmp / f"ray-w{level}", opts)
        print(f"ray, {level} actor(s) x concurrency 1: {figures[f'ray_w{level}']}")
    return figures


def resume(args: argparse.Namespace, tmp: Path, images: list[Path], settings: dict[str, Any]) -> dict[str, Any]:
    """Kill a CLI batch (64 studies) at study 40 with SIGKILL, rerun it, count what the rerun ran again."""
    from evlf.batch import BatchOptions, ResultsLog, read_manifest, run_batch
    from evlf.batch.work import make_pipeline

    total = args.resume_studies
    manifest = write_manifest(tmp / "resume.jsonl", images, total, "r")
    out = tmp / "resume-out"
    context = tmp / "context.json"
    context.write_text(json.dumps(settings))
    cmd = [sys.executable, "-m", "evlf", "batch", str(manifest), "--out", str(out), "--graph", args.graph,
           "--context-file", str(context), "--concurrency", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = out / "results.jsonl"
    while proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= args.kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    done_before = {r.id for r in ResultsLog(out).rows() if r.status == "ok"}
    print(f"killed the batch with {len(done_before)} of {total} studies done")

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner, self.ran = inner, []

        def run_many(self, studies: Any, concurrency: int = 4, **kw: Any) -> Any:
            self.ran.extend(s.id for s in studies)
            return self.inner.run_many(studies, concurrency=concurrency, **kw)

        def run(self, study: Any, **kw: Any) -> Any:
            self.ran.append(study.id)
            return self.inner.run(study, **kw)

    counting = Counting(make_pipeline(args.graph, settings))
    start = time.perf_counter()
    summary = run_batch(read_manifest(manifest), out, BatchOptions(graph=args.graph, settings=settings, concurrency=2), pipeline=counting)
    wall = time.perf_counter() - start
    redone = sorted(set(counting.ran) & done_before)
    figures = {
        "done_before_kill": len(done_before),
        "rerun_ran": len(counting.ran),
        "rerun_skipped": summary.skipped,
        "redone": len(redone),
        "rerun_wall_s": round(wall, 2),
        "all_done": len({r.id for r in ResultsLog(out).rows() if r.status == "ok"}) == total,
    }
    print(f"resume: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=16)
    parser.add_argument("--backend", default="demo")
    parser.add_argument("--graph", default="direct")
    parser.add_argument("--resume-studies", type=int, default=64)
    parser.add_argument("--kill-at", type=int, default=40)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--part", choices=("all", "throughput", "resume"), default="all", help="run one part only (a loaded machine)")
    args = parser.parse_args()

    from evlf.agents.context import Context

    tmp = Path(tempfile.mkdtemp(prefix="evlf-batch-bench-"))
    os.environ["EVLF_CASE_STORE"] = str(tmp / "no-store")  # before Ray starts: its workers inherit it
    images = make_images(tmp / "images")
    settings = Context(backend=args.backend, n_exemplars=0).model_dump(mode="json")
    print(f"evlf batch benchmark: backend {args.backend}, graph {args.graph}, {os.cpu_count()} CPUs, {args.studies} studies per run")
    figures = throughput(args, tmp, images, settings) if args.part in ("all", "throughput") else {}
    overhead = {}
    for workers in (1, 2):
        local, ray = figures.get(f"local_c{workers}"), figures.get(f"ray_w{workers}")
        if local and ray:
            overhead[f"ray_overhead_{workers}"] = round(1 - ray["per_s"] / local["per_s"], 3)
            print(f"Ray overhead at parallelism {workers}: {overhead[f'ray_overhead_{workers}']:+.1%} (goal < 15%)")
    resumed = resume(args, tmp, images, settings) if args.part in ("all", "resume") else {}
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"backend": args.backend, "graph": args.graph, "cpus": os.cpu_count(), **figures, **overhead, "resume": resumed}))


if __name__ == "__main__":
    main()

"""Startup benchmark: time to the first report with the demo model, and a warm second study.

- cold: `python -m evlf diagnose examples/images/chest_cr.dcm` (the demo
  backend, what a new user runs first) against `python -c "import torch,
  transformers"` on the same machine, interleaved, medians of --repeats;
  `cold_vs_import` is their ratio (goal: at most 2.0). Also timed: the
  imports no diagnose can skip (`transformers.modeling_utils`, which any
  model class imports, and `langgraph.graph`): `floor_vs_import` is what
  they alone cost against the goal's yardstick, `cold_vs_floor` what evlf adds;
- warm: in one process (the Python API, as a server runs it), a first study
  then further studies; `warm_vs_generate` is the median over the warm ones of
  `Pipeline.run` wall time against the model's own `generate` time for that
  study (goal: at most 1.2);
- breakdown: one more cold `evlf diagnose` in a child process with timers on
  the path's steps and `-X importtime`, printed as a table (where the time goes).

The shared machines are noisy, so only the ratios mean much. Each command runs
with an empty case store (a new user's) and no audit trail.
Prints its figures; the last line is one JSON object with the headline numbers.
Usage: python benchmarks/startup.py [--repeats 3] [--warm 6]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "images" / "chest_cr.dcm"
WARM_STUDIES = ("ct_small.dcm", "mr_small.dcm", "chest_cr.dcm")


def child_env(store: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EVLF_AUDIT"}
    env.update(HF_HUB_OFFLINE="1", EVLF_CASE_STORE=store, PYTHONPATH=str(ROOT))
    return env


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


# ---------------------------------------------------------------- breakdown child


class Phases:
    """Wall time per named step, summed over calls, in any thread (generate runs in a worker thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner: object, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.calls[name] = self.calls.get(name, 0) + 1

        setattr(owner, attr, timed)


def install_timers(phases: Phases, report_box: list) -> None:
    """Timers on the steps of the diagnose path (importing only evlf modules the path imports anyway)."""
    import evlf.cli.diagnose as diagnose
    import evlf.core.plugins as plugins
    import evlf.plugins.backends.constrained as constrained
    import evlf.plugins.backends.transformers_backend as tb

    phases.wrap(plugins, "get_host", "plugin host (get_host)")
    phases.wrap(tb.TransformersBackend, "__init__", "backend build (total)")
    phases.wrap(tb, "load_processor", "  processor loading")
    phases.wrap(tb, "weights_digest", "  weights hash")
    phases.wrap(tb.TransformersBackend, "_load", "  model + processor loading")
    phases.wrap(constrained.GrammarTokenizer, "__init__", "grammar tokenizer (llguidance vocab)")
    phases.wrap(constrained.GrammarLogitsProcessor, "__init__", "grammar compilation (LLMatcher)")
    phases.wrap(constrained.GrammarLogitsProcessor, "__call__", "constrained mask (inside generate)")
    phases.wrap(tb.TransformersBackend, "prepare", "processor call (template, image, tokens)")
    phases.wrap(tb.TransformersBackend, "_generate_batch", "backend generate (total)")

    init = tb.TransformersBackend.__init__

    @functools.wraps(init)
    def init_then_wrap_generate(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if not getattr(self.model.generate, "_evlf_timed", False):
            phases.wrap(self.model, "generate", "model.generate (forward passes + mask)")
            self.model.generate._evlf_timed = True

    tb.TransformersBackend.__init__ = init_then_wrap_generate
    show = diagnose.summary

    def capture(report):
        report_box.append(report)
        return show(report)

    diagnose.summary = capture
    phases.wrap(diagnose, "summary", "report printing")


def imports_seconds(stderr: str) -> tuple[float, list[tuple[float, str]]]:
    """Total import time (top-level entries of -X importtime) and the largest top-level packages."""
    top: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith("  ") or not cumulative.strip().isdigit():
            continue
        package = name.strip().split(".")[0]
        top[package] = top.get(package, 0.0) + int(cumulative) / 1e6
    biggest = sorted(((s, p) for p, s in top.items()), reverse=True)[:8]
    return sum(top.values()), biggest


def breakdown_child(out: str, image: str) -> None:
    started = time.perf_counter()
    phases = Phases()
    report_box: list = []
    install_timers(phases, report_box)
    from evlf.cli import main as cli_main

    try:
        cli_main(["diagnose", image])
    except SystemExit as exc:
        if exc.code:
            raise
    nodes = dict(report_box[0].provenance.timings_ms) if report_box else {}
    total = time.perf_counter() - started
    Path(out).write_text(json.dumps({"total": total, "phases": phases.seconds, "calls": phases.calls, "nodes_ms": nodes}))
    from evlf.cli.common import exit_now

    exit_now(0)  # as the console script leaves


def breakdown(env: dict[str, str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", __file__, "--child", out, str(EXAMPLE)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    process_wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"breakdown child failed: {done.stderr[-2000:]}")
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    imports, biggest = imports_seconds(done.stderr)
    print(f"\nbreakdown of one cold `evlf diagnose` (under -X importtime; process wall {process_wall:.2f} s):")
    print(f"  {'interpreter start + evlf.cli import + exit':<46} {process_wall - data['total']:7.2f} s")
    print(f"  {'all imports (anywhere on the path)':<46} {imports:7.2f} s   "
          + ", ".join(f"{p} {s:.2f}" for s, p in biggest))
    for name, seconds in data["phases"].items():
        print(f"  {name:<46} {seconds:7.2f} s   ({data['calls'][name]} calls)")
    print("  graph nodes (report provenance, ms): " + ", ".join(f"{k} {v:.0f}" for k, v in data["nodes_ms"].items()))
    keys = {"backend build (total)": "backend_build_s", "model.generate (forward passes + mask)": "first_generate_s",
            "processor loading": "processor_loading_s", "grammar compilation (LLMatcher)": "grammar_compile_s"}
    picked = {f"breakdown_{keys[k.strip()]}": round(v, 2) for k, v in data["phases"].items() if k.strip() in keys}
    return {"breakdown_imports_s": round(imports, 2), **picked}


# ---------------------------------------------------------------- warm studies in one process


def warm(n: int, store: str) -> tuple[float, list[float], float]:
    """(first study's wall, per warm study the ratio of run wall to model.generate, median generate seconds)."""
    os.environ.update(HF_HUB_OFFLINE="1", EVLF_CASE_STORE=store)
    os.environ.pop("EVLF_AUDIT", None)
    from evlf.agents.context import Context
    from evlf.agents.pipeline import Pipeline
    from evlf.core.types import Study

    images = ROOT / "examples" / "images"
    start = time.perf_counter()
    pipeline = Pipeline("full", Context.build({}))
    pipeline.run(Study.from_paths([EXAMPLE], task="diagnosis"))
    first = time.perf_counter() - start

    import evlf.plugins.backends.transformers_backend as tb

    generate_seconds: list[float] = []
    for model, _ in tb._LOADED.values():
        inner = model.generate

        def timed(*args, _inner=inner, **kwargs):
            t0 = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                generate_seconds.append(time.perf_counter() - t0)

        model.generate = timed
    ratios, generates = [], []
    for i in range(n):
        path = images / WARM_STUDIES[i % len(WARM_STUDIES)]
        study = Study.from_paths([path], task="diagnosis", id=f"warm-{i}")
        generate_seconds.clear()
        t0 = time.perf_counter()
        pipeline.run(study)
        elapsed = time.perf_counter() - t0
        spent = sum(generate_seconds)
        ratios.append(elapsed / spent)
        generates.append(spent)
        print(f"warm study {i + 1} ({path.name}): {elapsed * 1000:.0f} ms, model.generate {spent * 1000:.0f} ms "
              f"({len(generate_seconds)} calls), ratio {elapsed / spent:.2f}")
    return first, ratios, statistics.median(generates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold runs of each command, interleaved")
    parser.add_argument("--warm", type=int, default=6, help="warm studies after the first (in turn ct_small, mr_small, chest_cr)")
    parser.add_argument("--child", nargs=2, metavar=("OUT", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        breakdown_child(*args.child)
        return
    if not EXAMPLE.exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "fetch_examples.py")], check=True)
    store = str(Path(tempfile.mkdtemp(prefix="evlf-startup-")) / "no-cases")  # a new user has no case store
    env = child_env(store)
    py = sys.executable
    commands = {
        "python": [py, "-c", "pass"],
        "import": [py, "-c", "import torch, transformers"],
        # what any diagnose must import: a transformers model class pulls in modeling_utils (torch._dynamo,
        # torch.distributed.tensor with sympy, accelerate where installed, scipy.optimize), and the graph is LangGraph's
        # (leaving by os._exit, as the console script does, so teardown is not counted on one side only)
        "floor": [py, "-c", "import os, torch, transformers.modeling_utils, langgraph.graph; os._exit(0)"],
        "diagnose": [py, "-m", "evlf", "diagnose", str(EXAMPLE)],
    }
    wall(commands["diagnose"], env)  # warms the OS file cache for both sides alike
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, cmd in commands.items():
        print(f"cold {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)):<70} median {med[name]:6.2f} s  "
              f"({', '.join(f'{t:.2f}' for t in times[name])})")
    cold_ratio = med["diagnose"] / med["import"]
    print(f"cold_vs_import: {cold_ratio:.2f} (goal <= 2.0); the imports every diagnose needs alone: floor_vs_import "
          f"{med['floor'] / med['import']:.2f}, so evlf's own part is {med['diagnose'] - med['floor']:.2f} s "
          f"(cold_vs_floor {med['diagnose'] / med['floor']:.2f})")
    figures = breakdown(env)
    first, ratios, generate = warm(args.warm, store)
    warm_ratio = statistics.median(ratios)
    print(f"first study in-process {first:.2f} s; warm_vs_generate: {warm_ratio:.2f} (goal <= 1.2)")
    print(json.dumps({
        "cold_vs_import": round(cold_ratio, 2),
        "warm_vs_generate": round(warm_ratio, 2),
        "cold_diagnose_s": round(med["diagnose"], 2),
        "cold_import_torch_transformers_s": round(med["import"], 2),
        "floor_vs_import": round(med["floor"] / med["import"], 2),
        "cold_vs_floor": round(med["diagnose"] / med["floor"], 2),
        "cold_import_floor_s": round(med["floor"], 2),
        "cold_python_s": round(med["python"], 3),
        "warm_generate_s": round(generate, 3),
        "first_study_in_process_s": round(first, 2),
        **figures,
        "repeats": args.repeats,
    }))


if __name__ == "__main__":
    main()

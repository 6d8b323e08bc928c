"""The round runner on its own, with a stand-in Pipeline: rounds, cancellation before and during a run, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from evlf.core.types import ImageRef, Study
from evlf.server.runner import Cancelled, GraphRunner


class SteppingPipeline:
    """run_many that takes `steps` graph steps per study, reporting each through on_update like the real one."""

    graph_name = "stand-in"

    def __init__(self, steps: int = 5, step_s: float = 0.05) -> None:
        self.steps, self.step_s = steps, step_s
        self.rounds: list[list[str]] = []
        self.steps_done: dict[str, int] = {}

    def run_many(self, studies, concurrency, *, return_exceptions, on_update):
        self.rounds.append([s.id for s in studies])
        results: dict[str, object] = {}
        for step in range(self.steps):
            if len(results) == len(studies):
                break
            time.sleep(self.step_s)
            for s in studies:
                if s.id in results:
                    continue
                self.steps_done[s.id] = step + 1
                try:
                    on_update(SimpleNamespace(study_id=s.id, node=f"step{step}"))
                except Exception as exc:
                    results[s.id] = exc
        return [results.get(s.id, f"report of {s.id}") for s in studies]


def study(name: str) -> Study:
    return Study(id=name, images=[ImageRef(path="unused.png")])


async def _submit(runner, names, events):
    return await asyncio.gather(*(runner.run(study(n), events[n]) for n in names), return_exceptions=True)


def test_studies_queued_during_a_round_share_the_next_one():
    pipe = SteppingPipeline()
    runner = GraphRunner(pipe, max_batch=8, window_s=0.2)
    events = {n: threading.Event() for n in "abcde"}

    async def go():
        first = asyncio.ensure_future(runner.run(study("a"), events["a"]))
        await asyncio.sleep(0.05)
        rest = await _submit(runner, "bcde", events)
        return [await first, *rest]

    assert asyncio.run(go()) == [f"report of {n}" for n in "abcde"]
    assert pipe.rounds == [["a"], ["b", "c", "d", "e"]]
    runner.close()


def test_a_cancelled_study_stops_at_its_next_step_and_a_queued_one_never_starts():
    pipe = SteppingPipeline(steps=20)
    runner = GraphRunner(pipe, max_batch=8, window_s=0.0)
    events = {n: threading.Event() for n in "xyz"}

    async def go():
        running = asyncio.ensure_future(runner.run(study("x"), events["x"]))
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(runner.run(study("y"), events["y"]))
        events["y"].set()  # its client left while it waited
        events["x"].set()  # and this one's left mid-run
        return await asyncio.gather(running, queued, return_exceptions=True)

    x, y = asyncio.run(go())
    assert isinstance(x, Cancelled) and isinstance(y, Cancelled)
    assert pipe.steps_done["x"] < 20 and "y" not in pipe.steps_done
    runner.close()


def test_close_refuses_new_work_and_stops_the_round():
    pipe = SteppingPipeline(steps=100)
    runner = GraphRunner(pipe, max_batch=8, window_s=0.0)

    async def go():
        work = asyncio.ensure_future(runner.run(study("long"), threading.Event()))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await asyncio.to_thread(runner.close)
        with pytest.raises(Cancelled):
            await work
        with pytest.raises(Cancelled, match="shutting down"):
            await runner.run(study("late"), threading.Event())
        return time.monotonic() - started

    assert asyncio.run(go()) < 1.0
    assert pipe.steps_done["long"] < 100


def test_four_looping_clients_settle_into_rounds_of_four():
    pipe = SteppingPipeline(steps=3, step_s=0.05)
    runner = GraphRunner(pipe, max_batch=8, window_s=0.25)

    async def client(name: str, start_delay: float) -> None:
        await asyncio.sleep(start_delay)
        for n in range(6):
            await runner.run(study(f"{name}{n}"), threading.Event())
            await asyncio.sleep(0.03)  # the client reads its answer and sends the next request

    async def go():
        # two arrive at once, two a little later: without the wait the rounds would stay 2 + 2
        await asyncio.gather(client("a", 0), client("b", 0), client("c", 0.07), client("d", 0.07))

    asyncio.run(go())
    runner.close()
    sizes = [len(r) for r in pipe.rounds]
    assert sizes[2:5] == [4, 4, 4], sizes  # after the first rounds, until the early clients are done

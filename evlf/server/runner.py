"""One shared Pipeline per graph, run in rounds so that concurrent requests share the model and its batching.

A worker thread takes every study queued while the previous round ran and
hands them together to `Pipeline.run_many`, whose micro-batcher merges their
model calls into batched `generate` calls. A request whose client has gone is
dropped from the queue, or stopped at the next graph step through
`run_many`'s `on_update`, so no thread works for a client that left.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from evlf.core.errors import EvlfError
from evlf.core.types import Report, Study


class Cancelled(EvlfError):
    """The client went away (or the server is stopping) before the report was made."""


@dataclass
class Job:
    study: Study
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Report]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def settle(self, result: Report | BaseException) -> None:
        def _set() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(_set)
        except RuntimeError:  # the server's loop has closed: nobody waits any more
            pass


class GraphRunner:
    """Runs one Pipeline's studies in rounds on a worker thread."""

    def __init__(self, pipeline: Any, max_batch: int, window_s: float) -> None:
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.window_s = window_s
        self.rounds: list[int] = []  # round sizes, for benchmarks and tests
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._closing = threading.Event()
        self._count_lock = threading.Lock()
        self._outstanding = 0  # requests waiting or running
        self._peak = 0  # the most outstanding at once since the last round started
        self._thread = threading.Thread(target=self._work, name=f"evlf-runner-{pipeline.graph_name}", daemon=True)
        self._thread.start()

    async def run(self, study: Study, cancelled: threading.Event) -> Report:
        if self._closing.is_set():
            raise Cancelled("the server is shutting down")
        loop = asyncio.get_running_loop()
        job = Job(study, loop, loop.create_future(), cancelled)
        with self._count_lock:
            self._outstanding += 1
            self._peak = max(self._peak, self._outstanding)
        self._queue.put(job)
        try:
            return await job.future
        finally:
            with self._count_lock:
                self._outstanding -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, stop the round in progress at its next step, and end the worker."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return self._drain()
            with self._count_lock:  # the most requests in the server at once during the last round
                clients, self._peak = self._peak, self._outstanding
            jobs, stop = self._take(first, expect=min(clients, self.max_batch))
            self._round(jobs)
            if stop:
                return self._drain()

    def _take(self, first: Job, expect: int) -> tuple[list[Job], bool]:
        """`first` and what else is queued; under load wait up to the window for `expect` studies.

        `expect` is the most requests the server held at once during the last round. Without the wait,
        rounds settle into halves (2 + 2 for four clients): each round would start before the clients of
        the one before have sent their next request.
        """
        jobs = [first]
        deadline = time.monotonic() + (self.window_s if expect > 1 else 0.0)
        while len(jobs) < self.max_batch:
            wait = deadline - time.monotonic() if len(jobs) < expect else 0.0
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _round(self, jobs: list[Job]) -> None:
        live = []
        for job in jobs:
            if job.cancelled.is_set() or self._closing.is_set():
                job.settle(Cancelled("cancelled before it started"))
            else:
                live.append(job)
        if not live:
            return
        by_id = {job.study.id: job for job in live}
        self.rounds.append(len(live))

        def stop_if_gone(update: Any) -> None:
            job = by_id.get(update.study_id)
            if job is not None and (job.cancelled.is_set() or self._closing.is_set()):
                raise Cancelled(f"study {update.study_id} cancelled after {update.node}")

        try:
            results = self.pipeline.run_many(
                [job.study for job in live], concurrency=len(live), return_exceptions=True, on_update=stop_if_gone
            )
        except BaseException as exc:  # a failure of the round reaches every waiter, never hangs them
            results = [exc] * len(live)
        for job, result in zip(live, results):
            job.settle(result)

    def _drain(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.settle(Cancelled("the server is shutting down"))

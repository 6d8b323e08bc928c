"""Micro-batching: concurrent graph runs share one `generate` call.

Each reason node awaits `submit(request)`. The batcher knows how many studies
are in flight (`enter`/`leave`, called by `Pipeline.run_many`) and sends the
queue as soon as every one of them is waiting for the model, or when the
window runs out (a study busy elsewhere, e.g. refining), or when the batch is
full. A lone study (nothing in flight) is sent at once, with no added delay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from evlf.core.backends.base import Backend, Generation, GenerationRequest


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[Generation]


@dataclass
class MicroBatcher:
    backend: Backend
    max_batch: int = 32
    window_s: float = 0.05
    active: int = 0  # studies in flight (run_many); 0 outside run_many
    _queue: list[_Pending] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    batches: list[int] = field(default_factory=list)  # sizes of the batches sent, for benchmarks and tests

    def enter(self) -> None:
        self.active += 1

    def leave(self) -> None:
        self.active = max(0, self.active - 1)
        self._maybe_flush()

    async def submit(self, requests: list[GenerationRequest]) -> list[Generation]:
        loop = asyncio.get_running_loop()
        pending = [_Pending(r, loop.create_future()) for r in requests]
        self._queue.extend(pending)
        self._maybe_flush()
        if self._queue and self._timer is None:
            self._timer = loop.call_later(self.window_s, self._flush_now)
        return list(await asyncio.gather(*(p.future for p in pending)))

    def _ready(self) -> bool:
        return len(self._queue) >= max(1, min(self.max_batch, self.active))

    def _maybe_flush(self) -> None:
        if self._queue and self._ready():
            self._flush_now()

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        self.batches.append(len(batch))
        try:
            results = await asyncio.to_thread(self.backend.generate, [p.request for p in batch])
        except BaseException as exc:  # hand the failure to every waiter, never hang them
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, result in zip(batch, results):
            if not p.future.done():
                p.future.set_result(result)

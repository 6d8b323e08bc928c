"""Micro-batching: concurrent graph runs share one `generate` call.

Each reason node awaits `submit(request)`; requests arriving within a short
window (or until the batch is full) go to the backend together, so
`Pipeline.run_many` gets the backend's batched throughput instead of running
studies one after another.
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
    window_s: float = 0.005
    _queue: list[_Pending] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None
    batches: list[int] = field(default_factory=list)  # sizes of the batches sent, for benchmarks

    async def submit(self, requests: list[GenerationRequest]) -> list[Generation]:
        loop = asyncio.get_running_loop()
        pending = [_Pending(r, loop.create_future()) for r in requests]
        self._queue.extend(pending)
        if len(self._queue) >= self.max_batch:
            await self._flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())
        return list(await asyncio.gather(*(p.future for p in pending)))

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.window_s)
        await self._flush()

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            self.batches.append(len(batch))
            try:
                results = await asyncio.to_thread(self.backend.generate, [p.request for p in batch])
            except BaseException as exc:  # hand the failure to every waiter, never hang them
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)

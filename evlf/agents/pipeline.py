"""The public Python API: `evlf.Pipeline(...).run(study) -> Report`.

A Pipeline holds one graph and one Context. `run_many` runs studies
concurrently on one event loop; their model calls meet in a micro-batcher, so
they share batched `generate` calls. With `checkpoint=PATH` every step is
saved to SQLite under the study's id, and a run that was killed resumes where
it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.types import Command

from evlf.agents import resources
from evlf.agents.context import Context
from evlf.core.backends.base import Backend
from evlf.core.errors import EvlfError
from evlf.core.plugins import get_host
from evlf.core.refine import Refiner
from evlf.core import types as core_types
from evlf.core.types import Report, Study

Reviewer = Callable[[Report], dict[str, Any]]

_CHECKPOINT_TYPES = (
    core_types.Study,
    core_types.ImageRef,
    core_types.ImageSummary,
    core_types.ImageMeta,
    core_types.Finding,
    core_types.Box,
    core_types.Mask,
    core_types.Exemplar,
    core_types.Diagnosis,
    core_types.DifferentialItem,
    core_types.ReasoningStep,
    core_types.Provenance,
    core_types.Report,
    core_types.CheckIssue,
)


class ReviewPending(EvlfError):
    """The graph paused before the report for a person's review and no reviewer was given."""

    def __init__(self, study_id: str, draft: Report) -> None:
        self.study_id = study_id
        self.draft = draft
        super().__init__(f"study {study_id}: the report awaits review (resume with a reviewer or `evlf diagnose --review`)")


@dataclass
class NodeUpdate:
    """One step of a run, as streamed to progress displays."""

    study_id: str
    node: str
    path: tuple[str, ...]


class Pipeline:
    def __init__(
        self,
        graph: str = "full",
        context: Context | dict[str, Any] | None = None,
        *,
        backend: Backend | None = None,
        refiner: Refiner | None = None,
        checkpoint: str | Path | None = None,
        batch_window_s: float = 0.05,
        **overrides: Any,
    ) -> None:
        if isinstance(context, dict):
            context = Context(**context)
        base = context or Context()
        self.context = base.model_copy(update=overrides) if overrides else base
        if overrides:
            self.context = Context.model_validate(self.context.model_dump())
        self.graph_name = graph
        self.spec = get_host().registries.graphs.get(graph)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self._backend = backend
        self.batch_window_s = batch_window_s
        self._refiner = refiner
        self._compiled: Any = None if self.checkpoint else self.spec.build()
        if self.context.review and not self.checkpoint:
            raise EvlfError("review needs a checkpoint (Pipeline(checkpoint=PATH)) so the paused run can be resumed")

    # -- resources ---------------------------------------------------------------------------

    def resources(self) -> resources.Resources:
        return resources.Resources(
            context=self.context, backend=self._backend, refiner=self._refiner, batch_window_s=self.batch_window_s
        )

    @asynccontextmanager
    async def _graph(self) -> AsyncIterator[Any]:
        if self.checkpoint is None:
            yield self._compiled
            return
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(self.checkpoint)) as saver:
            saver.serde = JsonPlusSerializer(allowed_msgpack_modules=_CHECKPOINT_TYPES)
            yield self.spec.build(checkpointer=saver)

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        study: Study,
        *,
        reviewer: Reviewer | None = None,
        fresh: bool = False,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> Report:
        """Run one study to its Report. `on_update` sees each node as it finishes (progress displays)."""
        return asyncio.run(self.arun(study, reviewer=reviewer, fresh=fresh, on_update=on_update))

    async def arun(
        self,
        study: Study,
        *,
        reviewer: Reviewer | None = None,
        fresh: bool = False,
        res: resources.Resources | None = None,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> Report:
        token = resources.install(res or self.resources())
        try:
            async with self._graph() as graph:
                return await self._run(graph, study, reviewer, fresh, on_update)
        finally:
            resources.uninstall(token)

    async def _run(
        self,
        graph: Any,
        study: Study,
        reviewer: Reviewer | None,
        fresh: bool,
        on_update: Callable[[NodeUpdate], None] | None,
    ) -> Report:
        config: dict[str, Any] = {"configurable": {"thread_id": study.id}}
        payload: Any = {"study": study}
        if self.checkpoint is not None:
            if fresh:
                await graph.checkpointer.adelete_thread(study.id)
            snapshot = await graph.aget_state(config)
            if snapshot.values and not snapshot.next and "report" in snapshot.values:
                return snapshot.values["report"]  # finished earlier: the stored report
            if snapshot.next:
                payload = None  # resume where the run stopped
                pending = _pending_review(snapshot)
                if pending is not None:
                    if reviewer is None:
                        raise ReviewPending(study.id, pending)
                    payload = Command(resume=reviewer(pending))
        final: Report | None = None
        # with a checkpoint, each step is on disk before the next starts: a kill loses no finished step
        options: dict[str, Any] = {"durability": "sync"} if self.checkpoint is not None else {}
        while True:
            async for namespace, update in graph.astream(
                payload,
                config,
                context=self.context,
                stream_mode="updates",
                subgraphs=True,
                **options,
            ):
                if not isinstance(update, dict):
                    continue
                if not namespace and isinstance(update.get("report"), dict):
                    final = update["report"].get("report", final)
                if on_update is not None:
                    for node in update:
                        if node != "__interrupt__":
                            on_update(NodeUpdate(study.id, node, tuple(n.split(":")[0] for n in namespace)))
            if self.checkpoint is None:
                break
            snapshot = await graph.aget_state(config)
            pending = _pending_review(snapshot)
            if pending is None:
                break
            if reviewer is None:
                raise ReviewPending(study.id, pending)
            payload = Command(resume=reviewer(pending))
        if self.checkpoint is not None:
            final = (await graph.aget_state(config)).values.get("report")
        if final is None:
            raise EvlfError(f"study {study.id}: the graph {self.graph_name!r} ended without a report")
        return final

    def run_many(
        self,
        studies: Sequence[Study],
        concurrency: int = 8,
        *,
        return_exceptions: bool = False,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> list[Report | BaseException]:
        return asyncio.run(
            self.arun_many(studies, concurrency, return_exceptions=return_exceptions, on_update=on_update)
        )

    async def arun_many(
        self,
        studies: Sequence[Study],
        concurrency: int = 8,
        *,
        return_exceptions: bool = False,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> list[Report | BaseException]:
        """Run studies concurrently with one shared set of resources, so model calls batch together."""
        ids = [s.id for s in studies]
        if len(set(ids)) != len(ids):
            raise EvlfError("run_many needs distinct study ids (they key checkpoints and results)")
        shared = self.resources()
        shared.get_backend()  # load the model once, before the studies race for it
        limit = asyncio.Semaphore(max(1, concurrency))

        batcher = shared.batcher()

        async def one(study: Study) -> Report:
            async with limit:
                batcher.enter()
                try:
                    return await self.arun(study, res=shared, on_update=on_update)
                finally:
                    batcher.leave()

        results = await asyncio.gather(*(one(s) for s in studies), return_exceptions=True)
        if not return_exceptions:
            for r in results:
                if isinstance(r, BaseException):
                    raise r
        return list(results)


def _pending_review(snapshot: Any) -> Report | None:
    for task in getattr(snapshot, "tasks", ()) or ():
        for intr in getattr(task, "interrupts", ()) or ():
            value = getattr(intr, "value", None)
            if isinstance(value, dict) and "draft" in value:
                return Report.model_validate(value["draft"])
    return None

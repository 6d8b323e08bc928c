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

from evlf.agents import defaults, resources
from evlf.agents.audit import Auditor, as_auditor
from evlf.agents.context import Context
from evlf.agents.runtime import RunContext
from evlf.agents.state import CHECKPOINT_TYPES
from evlf.agents.threads import thread_id
from evlf.core.audit import AuditLog
from evlf.core.audit.record import EntryPoint
from evlf.core.backends.base import Backend
from evlf.core.errors import ConfigError, EvlfError
from evlf.core.plugins import get_host
from evlf.core.refine import Refiner
from evlf.core.types import Report, Study

Reviewer = Callable[[Report], dict[str, Any]]


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
    """One graph with one configuration, checked when built.

    `audit=PATH` (or $EVLF_AUDIT) appends one hash-chained audit record per
    report (docs/audit.md); the report's provenance names it (`audit_id`).

    `backend` and `refiner` take a registered name (`backend="transformers", model=DIR`)
    or an instance; any other keyword is a Context setting. A configuration
    that cannot run is a ConfigError here, before any node runs.
    """

    def __init__(
        self,
        graph: str = defaults.GRAPH,
        context: Context | dict[str, Any] | None = None,
        *,
        backend: Backend | str | None = None,
        refiner: Refiner | str | None = None,
        checkpoint: str | Path | None = None,
        batch_window_s: float = 0.05,
        audit: Auditor | AuditLog | str | Path | bool | None = None,
        audit_entry: EntryPoint = "api",
        **overrides: Any,
    ) -> None:
        for key, value in (("backend", backend), ("refiner", refiner)):
            if isinstance(value, str):
                overrides[key] = value
        self._backend = backend if isinstance(backend, Backend) else None
        self._refiner = refiner if isinstance(refiner, Refiner) else None
        for key, value in (("backend", backend), ("refiner", refiner)):
            if value is not None and not isinstance(value, (str, Backend, Refiner)):
                raise ConfigError(f"{key}= takes a registered name or an instance, not {type(value).__name__}")
        self.context = Context.build(context, **overrides)
        self.graph_name = graph
        self.spec = get_host().registries.graphs.get(graph)
        resources.check_config(self.context, backend=self._backend is None, refiner=self._refiner is None)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.batch_window_s = batch_window_s
        if self.context.review and not self.checkpoint:
            raise ConfigError("review needs a checkpoint (Pipeline(checkpoint=PATH)) so the paused run can be resumed")
        self._compiled: Any = None if self.checkpoint else self.spec.build()
        self.auditor = as_auditor(audit, audit_entry)  # None: no audit record (audit= or $EVLF_AUDIT turns it on)
        self.replay_of: str | None = None  # set by evlf.agents.replay on the pipeline it re-runs a record with

    def resources(self) -> resources.Resources:
        return resources.Resources(
            context=self.context, backend=self._backend, refiner=self._refiner, batch_window_s=self.batch_window_s,
            wrap=self.auditor.wrap if self.auditor is not None else None,
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
            saver.serde = JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)
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
        run = RunContext(self.context, res or self.resources())
        try:
            async with self._graph() as graph:
                report = await self._run(graph, run, study, reviewer, fresh, on_update)
        finally:
            run.forget(study)
        return self._audited(study, report, run.resources)

    def _audited(self, study: Study, report: Report, res: resources.Resources) -> Report:
        """Append the run's audit record (when auditing) and name it in the report's provenance."""
        if self.auditor is None:
            return report
        config = self.auditor.config(self.graph_name, self.spec.version, self.context, res)
        record = self.auditor.write(study, report, config, res, replay_of=self.replay_of)
        return report.model_copy(update={"provenance": report.provenance.model_copy(update={"audit_id": record.id})})

    async def _run(
        self,
        graph: Any,
        run: RunContext,
        study: Study,
        reviewer: Reviewer | None,
        fresh: bool,
        on_update: Callable[[NodeUpdate], None] | None,
    ) -> Report:
        # the thread id keys a checkpoint (content hashes: a 7 MB radiograph costs 6 ms to hash); without one it only names the run
        thread = thread_id(study, self.graph_name, self.spec.version, self.context, self._backend) if self.checkpoint is not None else study.id
        config: dict[str, Any] = {"configurable": {"thread_id": thread}}
        payload: Any = {"study": study}
        if self.checkpoint is not None:
            if fresh:
                await graph.checkpointer.adelete_thread(thread)
            snapshot = await graph.aget_state(config)
            if snapshot.values and not snapshot.next and "report" in snapshot.values:
                return snapshot.values["report"]  # finished earlier: the stored report
            if snapshot.next:
                payload = _resume(study, snapshot, reviewer)  # None: go on where the run stopped
        while True:
            final = await self._stream(graph, payload, config, run, study, on_update)
            if self.checkpoint is None:
                break
            snapshot = await graph.aget_state(config)
            if _pending_review(snapshot) is None:
                final = snapshot.values.get("report")
                break
            payload = _resume(study, snapshot, reviewer)
        if final is None:
            raise EvlfError(f"study {study.id}: the graph {self.graph_name!r} ended without a report")
        return final

    async def _stream(
        self, graph: Any, payload: Any, config: dict[str, Any], run: RunContext, study: Study, on_update: Callable[[NodeUpdate], None] | None
    ) -> Report | None:
        """Run the graph until it ends or pauses; the report, when it was produced."""
        final: Report | None = None
        # with a checkpoint, each step is on disk before the next starts: a kill loses no finished step
        options: dict[str, Any] = {"durability": "sync"} if self.checkpoint is not None else {}
        async for namespace, update in graph.astream(payload, config, context=run, stream_mode="updates", subgraphs=True, **options):
            if not isinstance(update, dict):
                continue
            if not namespace and isinstance(update.get("report"), dict):
                final = update["report"].get("report", final)
            if on_update is not None:
                for node in update:
                    if node != "__interrupt__":
                        on_update(NodeUpdate(study.id, node, tuple(n.split(":")[0] for n in namespace)))
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


def _resume(study: Study, snapshot: Any, reviewer: Reviewer | None) -> Any:
    """What continues a stopped run: the reviewer's decision when it paused for review, else nothing."""
    pending = _pending_review(snapshot)
    if pending is None:
        return None
    if reviewer is None:
        raise ReviewPending(study.id, pending)
    return Command(resume=reviewer(pending))


def _pending_review(snapshot: Any) -> Report | None:
    for task in getattr(snapshot, "tasks", ()) or ():
        for intr in getattr(task, "interrupts", ()) or ():
            value = getattr(intr, "value", None)
            if isinstance(value, dict) and "draft" in value:
                return Report.model_validate(value["draft"])
    return None

"""Many studies in one run (`evlf batch`): a manifest in, one report per study and results.jsonl out.

manifest (what to run) -> keys (what is already done) -> an engine (local:
`Pipeline.run_many` in chunks; ray: an actor pool over Ray Data) -> outputs
and results (atomic report files, an append-only record). Ray is imported
only by the ray engine.
"""

from __future__ import annotations

from evlf.batch.manifest import BatchItem, read_manifest
from evlf.batch.results import ResultRow, ResultsLog
from evlf.batch.runner import BatchOptions, BatchSummary, run_batch

__all__ = ["BatchItem", "BatchOptions", "BatchSummary", "ResultRow", "ResultsLog", "read_manifest", "run_batch"]

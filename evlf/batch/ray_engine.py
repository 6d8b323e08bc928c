"""`--engine ray`: Ray Data over the jobs, `map_batches` with a pool of Pipeline actors.

Each actor loads one Pipeline (one model) and runs the batches it is given
exactly as the local engine runs a chunk, so both engines write the same
reports. `num_gpus` gives each actor a GPU of its own; `address` joins a
cluster (`ray.init(address=...)`), none starts a local Ray. Ray is imported
here only: `pip install 'evlf[ray]'`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from evlf.batch.work import Job, Outcome, make_pipeline, run_chunk
from evlf.core.errors import ConfigError


class PipelineActor:
    """A Ray Data callable class: one Pipeline per actor, one chunk per batch."""

    def __init__(self, graph: str, settings: dict[str, Any], concurrency: int, audit: str | None = None) -> None:
        self.pipeline = make_pipeline(graph, settings, audit)
        self.concurrency = concurrency

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        jobs = [Job.model_validate_json(text) for text in batch["job"]]
        try:
            outcomes = run_chunk(self.pipeline, jobs, self.concurrency)
        except ConfigError as exc:  # handed to the driver, which stops the batch with this one line
            outcomes = [Outcome(id=j.study.id, key=j.key, error=str(exc), fatal=True) for j in jobs]
        return {"outcome": [o.model_dump_json() for o in outcomes]}


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'evlf[ray]'") from None
    return ray


def ensure_ray(address: str | None = None, **init: Any) -> Any:
    """Connect to the cluster at `address`, or start a local Ray; a running connection is kept."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, **init)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, **init)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--address {address}: cannot start or join Ray ({' '.join(str(exc).split())[:300]})") from None
    return ray


def run_ray(
    jobs: Sequence[Job],
    graph: str,
    settings: dict[str, Any],
    *,
    concurrency: int = 4,
    workers: int = 1,
    num_gpus: float = 0.0,
    address: str | None = None,
    audit: str | None = None,
) -> Iterator[Outcome]:
    """Outcomes of the jobs as the actors finish their batches (in no fixed order)."""
    if not jobs:
        return
    ray = ensure_ray(address)
    ray.data.DataContext.get_current().enable_progress_bars = False  # evlf draws its own
    step = max(1, concurrency)
    data = ray.data.from_items([{"job": j.model_dump_json()} for j in jobs], override_num_blocks=max(1, -(-len(jobs) // step)))
    options: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {}
    results = data.map_batches(
        PipelineActor,
        fn_constructor_kwargs={"graph": graph, "settings": dict(settings), "concurrency": step, "audit": audit},
        batch_size=step,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, workers)),
        **options,
    )
    for row in results.iter_rows():
        outcome = Outcome.model_validate_json(str(row["outcome"]))
        if outcome.fatal:
            raise ConfigError(outcome.error or "a setting cannot work")
        yield outcome

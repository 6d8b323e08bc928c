"""The Ray engine on a local Ray with 2 CPUs writes the same reports as the local engine."""

from __future__ import annotations

import pytest

from evlf.batch import BatchOptions, ResultsLog, read_manifest, run_batch

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'evlf[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_writes_the_reports_the_local_engine_writes(local_ray, tmp_path, images, pipeline, settings, write_manifest, report_files):
    manifest = write_manifest([
        {"id": "ct", "images": [images["ct"]]},
        {"id": "eye", "images": [images["fundus"]], "question": "Is the optic disc visible?"},
        {"id": "bad", "images": [images["corrupt"]]},
        {"id": "mr", "images": [images["mr"]]},
    ])
    items = read_manifest(manifest)
    local = run_batch(items, tmp_path / "local", BatchOptions(graph="direct", settings=settings, concurrency=2), pipeline=pipeline)
    on_ray = run_batch(
        items, tmp_path / "ray", BatchOptions(graph="direct", settings=settings, concurrency=2, engine="ray", workers=2)
    )
    assert (on_ray.ok, on_ray.failed) == (local.ok, local.failed) == (3, 1)
    assert report_files(tmp_path / "ray") == report_files(tmp_path / "local")
    ray_rows = {r.id: r.model_dump(exclude={"latency_ms"}) for r in ResultsLog(tmp_path / "ray").rows()}
    local_rows = {r.id: r.model_dump(exclude={"latency_ms"}) for r in ResultsLog(tmp_path / "local").rows()}
    assert ray_rows == local_rows and "corrupt.png" in ray_rows["bad"]["error"]
    # the resume key does not depend on the engine: the local engine finds the Ray run's studies done
    again = run_batch(items, tmp_path / "ray", BatchOptions(graph="direct", settings=settings), pipeline=pipeline)
    assert (again.skipped, again.ok, again.failed) == (3, 0, 1)  # only the bad study was tried again

"""Manifests (batch lines, dataset lines, folders), resume keys, the results log and atomic writes."""

from __future__ import annotations

import json
import shutil

import pytest

from evlf.batch.keys import config_key, study_key
from evlf.batch.manifest import BatchItem, read_manifest
from evlf.batch.results import ResultRow, ResultsLog, write_atomic
from evlf.core.errors import InputError


def test_batch_lines_resolve_paths_and_carry_question_and_hints(tmp_path, write_manifest):
    path = write_manifest([
        {"id": "a", "images": ["img/a.dcm"], "question": "Is there a nodule?", "hints": {"site": "x"}, "modality": "CT"},
        {"id": "b", "images": ["/abs/b.png", "img/c.png"], "task": "grounding", "specialty": "radiology"},
    ])
    a, b = read_manifest(path)
    assert a.images == [tmp_path / "img" / "a.dcm"]
    study = a.study()
    assert study.task == "vqa" and study.question == "Is there a nodule?"
    assert study.metadata == {"site": "x", "modality": "CT"}
    assert [str(p) for p in b.images] == ["/abs/b.png", str(tmp_path / "img" / "c.png")]
    assert b.study().task == "grounding" and b.study().specialty == "radiology"


def test_dataset_lines_read_as_a_manifest(write_manifest):
    path = write_manifest([
        {"id": "c1", "images": ["x.png"], "task": "cls", "label": "nevus", "modality": "dermoscopy"},
        {"id": "v1", "images": ["y.png"], "task": "vqa", "question": "Left or right?", "answer": "left"},
    ])
    c1, v1 = read_manifest(path)
    assert c1.study().task == "diagnosis" and c1.study().metadata == {"modality": "dermoscopy"}
    assert v1.study().task == "vqa" and v1.study().question == "Left or right?"


def test_bad_manifest_lines_are_listed_with_their_numbers(write_manifest, tmp_path):
    path = write_manifest([{"id": "a", "images": ["x.png"]}, {"id": "b", "images": []}, {"id": "a", "images": ["y.png"]}])
    with pytest.raises(InputError) as err:
        read_manifest(path)
    assert str(path) in str(err.value) and "line 2" in str(err.value) and "duplicate id 'a'" in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        read_manifest(tmp_path / "nope.jsonl")


def test_folder_manifest_takes_image_files_recursively(tmp_path, images):
    folder = tmp_path / "cohort"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(images["ct"], folder / "ct.dcm")
    shutil.copyfile(images["fundus"], folder / "sub" / "eye.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"x")
    items = read_manifest(folder)
    assert [i.id for i in items] == ["ct.dcm", "sub/eye.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        read_manifest(empty)


def test_keys_follow_content_and_configuration_not_paths(tmp_path, images):
    moved = tmp_path / "elsewhere" / "renamed.dcm"
    moved.parent.mkdir()
    shutil.copyfile(images["ct"], moved)
    config = config_key("direct", {"backend": "tiny"})
    here = study_key(BatchItem(id="s", images=[images["ct"]]), config)
    assert study_key(BatchItem(id="s", images=[moved]), config) == here  # same bytes, other path
    assert study_key(BatchItem(id="s", images=[moved]), config_key("full", {"backend": "tiny"})) != here
    assert study_key(BatchItem(id="s", images=[moved], question="Why?"), config) != here
    moved.write_bytes(moved.read_bytes() + b"\0")
    assert study_key(BatchItem(id="s", images=[moved]), config) != here  # changed bytes
    with pytest.raises(InputError, match="no such file"):
        study_key(BatchItem(id="s", images=[images["missing"]]), config)


def test_results_log_survives_a_torn_last_line(tmp_path):
    log = ResultsLog(tmp_path)
    log.append(ResultRow(id="a", key="k1", status="ok"))
    with log.path.open("a") as fh:
        fh.write('{"id": "b", "key": "k2", "sta')  # a kill in the middle of a write
    log.append(ResultRow(id="c", key="k3", status="failed", error="boom"))
    rows = log.rows()
    assert [r.id for r in rows] == ["a", "c"] and rows[1].error == "boom"
    lines = log.path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["id"] == "c"  # the torn line was ended before the next row
    assert log.done_keys(tmp_path) == {"k1"}  # failed studies are not done


def test_done_needs_the_report_files_on_disk(tmp_path):
    log = ResultsLog(tmp_path)
    log.append(ResultRow(id="a", key="k1", status="ok", reports={"json": "reports/a.json"}))
    assert log.done_keys(tmp_path) == set()
    write_atomic(tmp_path / "reports" / "a.json", "{}")
    assert log.done_keys(tmp_path) == {"k1"}


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_ray_is_imported_by_the_ray_engine_only(monkeypatch):
    import subprocess
    import sys

    code = "import sys, evlf.batch, evlf.cli.batch, evlf.batch.local; assert 'ray' not in sys.modules, 'ray imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from evlf.batch.ray_engine import ensure_ray
    from evlf.core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'evlf\[ray\]'"):
        ensure_ray()

"""`evlf cases`: add a dataset, search it as JSON, describe the store; bad input exits 2 with one line and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evlf.cli import app
from evlf.cli.common import run_app

from .conftest import snapshot, write_dataset, write_png


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    rows = []
    for i, (colour, modality, label) in enumerate([((200, 40, 40), "CT", "a"), ((40, 200, 40), "MR", "b"), ((190, 50, 45), "CT", "a")]):
        write_png(tmp_path / f"img{i}.png", colour, size=(64, 64), seed=i)
        rows.append({"id": f"case{i}", "images": [f"img{i}.png"], "label": label, "modality": modality, "specialty": "radiology", "licence": "CC0"})
    return write_dataset(tmp_path / "cases.jsonl", rows)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = run_app(app, list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_search_info(tmp_path, dataset, capsys, monkeypatch):
    monkeypatch.setenv("EVLF_CASE_STORE", str(tmp_path / "store"))
    code, out, _ = run(capsys, "cases", "add", str(dataset), "--json")
    assert code == 0 and json.loads(out) == {"added": 3, "total": 3, "store": str(tmp_path / "store")}
    code, out, _ = run(capsys, "cases", "search", str(tmp_path / "img0.png"), "-k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and [h["case_id"] for h in hits][0] == "case0"
    assert {"case_id", "similarity", "modality", "specialty", "labels"} <= set(hits[0])
    assert hits[0]["labels"] == ["a"] and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    code, out, _ = run(capsys, "cases", "search", str(tmp_path / "img0.png"), "--modality", "MR", "--json")
    assert [h["case_id"] for h in json.loads(out)] == ["case1"]
    code, out, _ = run(capsys, "cases", "info", "--json")
    info = json.loads(out)
    assert info["count"] == 3 and info["embedder"].startswith("efficientnet-lite0@") and info["dim"] == 1280


def test_bad_input_exits_2_and_changes_nothing(tmp_path, dataset, capsys):
    store = tmp_path / "s"
    assert run(capsys, "cases", "add", str(dataset), "--store", str(store))[0] == 0
    before = snapshot(store)
    code, _, err = run(capsys, "cases", "add", str(dataset), "--store", str(store))
    assert code == 2 and "'case0' is already in the store" in err and "Traceback" not in err
    assert "evlf cases update" in " ".join(err.split())
    bad = write_dataset(tmp_path / "bad.jsonl", [{"id": "new", "images": ["nope.png"]}])
    code, _, err = run(capsys, "cases", "add", str(bad), "--store", str(store))
    assert code == 2 and "nope.png" in err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "images": []}\n')
    code, _, err = run(capsys, "cases", "add", str(broken), "--store", str(store))
    assert code == 2 and "broken.jsonl" in err and "line 1" in err
    assert snapshot(store) == before
    code, _, err = run(capsys, "cases", "search", str(tmp_path / "img0.png"), "--store", str(tmp_path / "empty"))
    assert code == 2 and "no case store here" in err
    (store / "manifest.json").write_text("garbage")
    code, _, err = run(capsys, "cases", "info", "--store", str(store))
    assert code == 2 and "manifest.json" in err and "corrupt" in err


def test_default_store_path(monkeypatch):
    from evlf.cli.cases import default_store_path

    monkeypatch.delenv("EVLF_CASE_STORE", raising=False)
    assert default_store_path().parts[-2:] == ("evlf", "cases")
    monkeypatch.setenv("EVLF_CASE_STORE", "/some/where")
    assert default_store_path() == Path("/some/where")


def test_update_replaces_stored_cases_and_refuses_unknown_ids(tmp_path, dataset, capsys):
    store = tmp_path / "s"
    assert run(capsys, "cases", "add", str(dataset), "--store", str(store))[0] == 0
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    rows[0]["label"] = "b"
    changed = write_dataset(tmp_path / "changed.jsonl", rows[:1])
    code, out, _ = run(capsys, "cases", "update", str(changed), "--store", str(store), "--json")
    assert code == 0 and json.loads(out) == {"updated": 1, "total": 3, "store": str(store)}
    code, out, _ = run(capsys, "cases", "search", str(tmp_path / "img0.png"), "-k", "1", "--store", str(store), "--json")
    assert json.loads(out)[0]["case_id"] == "case0" and json.loads(out)[0]["labels"] == ["b"]
    before = snapshot(store)
    unknown = write_dataset(tmp_path / "unknown.jsonl", [{**rows[1], "label": "a"}, {**rows[2], "id": "new"}])
    code, _, err = run(capsys, "cases", "update", str(unknown), "--store", str(store))
    assert code == 2 and "'new' is not in the store" in err and "evlf cases add" in " ".join(err.split())
    assert snapshot(store) == before

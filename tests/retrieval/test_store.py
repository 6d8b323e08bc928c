"""The case store: add/search/update/delete, persistence, filtering, and refusal of bad input without damage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evlf.core.errors import ConfigError, InputError
from evlf.core.imaging import load_image
from evlf.retrieval import CaseStore
from evlf.retrieval import index as ix
from evlf.retrieval.store import INDEX_FILE, MANIFEST_FILE

from .conftest import ColourEmbedder, snapshot


def test_add_search_reopen(store, make_cases, embedder):
    cases = make_cases(6)
    store.add(cases)
    assert len(store) == 6
    query = load_image(cases[4].image_path)
    hits = store.search(query, k=3)
    assert hits[0][0].case_id == "c4"
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert hits[0][0].image_sha256 == query.sha256
    root = store.root
    store.close()
    with CaseStore.open(root, embedder) as again:
        assert len(again) == 6 and again.info()["memory_mapped"]
        assert [c.case_id for c, _ in again.search(query, k=3)] == [c.case_id for c, _ in hits]
        again.add(make_cases(2, prefix="d"))  # a memory-mapped store still takes writes
        assert len(again) == 8
    with CaseStore.open(root, embedder) as third:
        assert len(third) == 8 and third.manifest.count == 8


def test_filter_before_ranking(store, make_cases):
    cases = make_cases(8)
    store.add(cases)
    query = load_image(cases[0].image_path)  # a CT case
    hits = store.search(query, k=5, modality="mr")
    assert hits and all(c.modality == "MR" for c, _ in hits)
    assert len(hits) == 4
    hits = store.search(query, k=5, modality="MR", specialty="pulmonology")
    assert {c.case_id for c, _ in hits} == {c.case_id for c in cases if c.modality == "MR" and c.specialty == "pulmonology"}
    assert store.search(query, k=5, modality="fundus") == []


def test_filter_on_large_ivf_index(tmp_path, embedder, monkeypatch):
    """Above the exact-filter limit the filter runs inside faiss (IDSelector), still before ranking."""
    from evlf.retrieval import Case
    from evlf.retrieval import store as store_mod

    monkeypatch.setattr(store_mod, "EXACT_FILTER_LIMIT", 10)
    monkeypatch.setattr(ix, "FLAT_LIMIT", 200)
    rng = np.random.default_rng(0)
    n = 600
    vecs = rng.standard_normal((n, embedder.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cases = [Case(case_id=f"v{i}", image_path=f"/nowhere/{i}.png", modality="CT" if i % 2 else "MR") for i in range(n)]
    with CaseStore.create(tmp_path / "big", embedder) as s:
        s.add(cases[:100], vectors=vecs[:100])
        assert s.manifest.factory == "IDMap2,Flat"
        s.add(cases[100:], vectors=vecs[100:])  # crosses the limit: the index type follows the size
        assert s.manifest.factory == ix.auto_factory(n, embedder.dim) and s.manifest.factory.endswith("x4fs,RFlat")
        hits = s.search_vectors(vecs[7], k=5, modality="MR")[0]
        assert len(hits) == 5 and all(c.modality == "MR" for c, _ in hits)
        hits = s.search_vectors(vecs[7], k=5, modality="CT")[0]
        assert hits[0][0].case_id == "v7" and hits[0][1] == pytest.approx(1.0, abs=1e-4)
        s.set_nprobe(3)
        root = s.root
    with CaseStore.open(root, embedder) as s:
        assert s.manifest.factory.startswith("IVF") and len(s) == n and s.info()["nprobe"] == 3
        assert s.search_vectors(vecs[8], k=1)[0][0][0].case_id == "v8"


def test_update_and_delete(store, make_cases):
    cases = make_cases(5)
    store.add(cases)
    updated = cases[1].model_copy(update={"labels": ["new label"], "image_path": cases[3].image_path})
    store.update(updated)
    assert store.get("c1").labels == ["new label"]
    q3 = load_image(cases[3].image_path)
    top2 = {c.case_id for c, _ in store.search(q3, k=2)}
    assert top2 == {"c1", "c3"}  # c1 now points at c3's image, so its vector moved too
    assert store.delete(["c3"]) == 1
    assert "c3" not in store and len(store) == 4
    assert all(c.case_id != "c3" for c, _ in store.search(q3, k=4))
    before = snapshot(store.root)
    with pytest.raises(InputError, match="no case 'nope'"):
        store.delete(["c0", "nope"])
    assert snapshot(store.root) == before and "c0" in store


def test_delete_rebuilds_index_types_without_removal(tmp_path, embedder, make_cases):
    with CaseStore.create(tmp_path / "hnsw", embedder, factory="HNSW8,Flat") as s:
        s.add(make_cases(6))
        s.delete(["c2"])
        assert len(s) == 5 and s.manifest.count == 5
        assert all(c.case_id != "c2" for c, _ in s.search(load_image(s.get("c0").image_path), k=6))


def test_untrainable_first_add_refused(tmp_path, embedder, make_cases):
    with CaseStore.create(tmp_path / "ivf", embedder, factory="IVF8,Flat") as s:
        before = snapshot(s.root)
        with pytest.raises(InputError, match="needs 8 cases"):
            s.add(make_cases(3))
        assert snapshot(s.root) == before and len(s) == 0
        s.add(make_cases(10, prefix="m"))
        assert s.search(load_image(s.get("m4").image_path), k=1)[0][0].case_id == "m4"


def test_bad_factory_string(tmp_path, embedder):
    with pytest.raises(ConfigError, match="factory"):
        CaseStore.create(tmp_path / "x", embedder, factory="NotAnIndex99")
    assert not (tmp_path / "x" / MANIFEST_FILE).exists()


def test_duplicate_and_missing_image_leave_store_unchanged(store, make_cases):
    cases = make_cases(3)
    store.add(cases[:2])
    before = snapshot(store.root)
    with pytest.raises(InputError, match="'c1' is already in the store"):
        store.add([cases[2], cases[1]])
    with pytest.raises(InputError, match="duplicate case id 'c2'"):
        store.add([cases[2], cases[2]])
    missing = cases[2].model_copy(update={"image_path": str(Path(cases[2].image_path).with_name("gone.png"))})
    with pytest.raises(InputError, match="gone.png"):
        store.add([missing])
    assert snapshot(store.root) == before
    assert len(store) == 2 and "c2" not in store


def test_embedder_mismatch_refused(store, make_cases):
    store.add(make_cases(2))
    root = store.root
    store.close()
    with pytest.raises(ConfigError, match="never mix"):
        CaseStore.open(root, ColourEmbedder(version="2"))
    with CaseStore.open(root, ColourEmbedder()) as s:
        with pytest.raises(ConfigError, match="5 dimensions"):
            s.search_vectors(np.ones((1, 5), np.float32))


def test_corrupt_manifest_and_index(store, make_cases, embedder):
    store.add(make_cases(3))
    root = store.root
    store.close()
    manifest = (root / MANIFEST_FILE).read_bytes()
    (root / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(InputError, match="manifest is corrupt"):
        CaseStore.open(root, embedder)
    (root / MANIFEST_FILE).write_text(json.dumps({"embedder": "x"}))
    with pytest.raises(InputError, match="manifest is invalid"):
        CaseStore.open(root, embedder)
    (root / MANIFEST_FILE).write_bytes(manifest)

    index = (root / INDEX_FILE).read_bytes()
    (root / INDEX_FILE).write_bytes(index[: len(index) // 2])
    before = snapshot(root)
    with pytest.raises(InputError, match="checksum"):
        CaseStore.open(root, embedder)
    assert snapshot(root) == before  # refusing to open changes nothing
    with CaseStore.open(root, embedder, repair=True) as s:  # `evlf cases reindex`
        assert len(s) == 3 and s.search(load_image(s.get("c1").image_path), k=1)[0][0].case_id == "c1"
    with CaseStore.open(root, embedder) as s:
        assert s.manifest.count == 3


def test_interrupted_index_write_loses_nothing(store, make_cases, embedder, monkeypatch):
    cases = make_cases(4)
    store.add(cases[:2])
    root = store.root

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut while writing the index")

    monkeypatch.setattr(ix, "save_index", crash)
    with pytest.raises(KeyboardInterrupt):
        store.add(cases[2:3])
    monkeypatch.undo()
    store.close()
    with CaseStore.open(root, embedder) as s:
        assert any("rebuilt" in w for w in s.warnings)
        assert {c.case_id for c in s.cases()} == {"c0", "c1", "c2"}
        assert s.search(load_image(cases[2].image_path), k=1)[0][0].case_id == "c2"
    with CaseStore.open(root, embedder) as s:
        assert not s.warnings and s.manifest.count == 3


def test_interrupted_database_write_rolls_back(store, make_cases, monkeypatch):
    cases = make_cases(4)
    store.add(cases[:2])
    before = snapshot(store.root)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed between row inserts and commit")

    monkeypatch.setattr(CaseStore, "_set_generation", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        store.add(cases[2:])
    monkeypatch.undo()
    assert len(store) == 2 and "c2" not in store
    assert snapshot(store.root) == before


def test_open_missing_store(tmp_path):
    with pytest.raises(InputError, match="no case store here"):
        CaseStore.open(tmp_path / "none")


def test_open_hashes_the_index_only_when_the_file_changed(store, make_cases, embedder, monkeypatch):
    """Opening trusts an index file with the size and time its writer recorded; any other file is hashed in full."""
    import os

    from evlf.retrieval import store as store_mod

    store.add(make_cases(3))
    root = store.root
    store.close()
    hashed: list[Path] = []
    real = store_mod.sha256_file
    monkeypatch.setattr(store_mod, "sha256_file", lambda p: hashed.append(p) or real(p))
    with CaseStore.open(root, embedder) as s:
        assert len(s) == 3
    assert hashed == []
    path = root / INDEX_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes, a later time
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(InputError, match="checksum"):
        CaseStore.open(root, embedder)
    assert hashed == [path]


def test_two_handles_in_one_process_see_each_others_writes(tmp_path, embedder, make_cases):
    """A handle opened before another wrote adds to the current index, not to its stale copy."""
    cases = make_cases(6)
    with CaseStore.create(tmp_path / "s", embedder) as a:
        a.add(cases[:2])
        with CaseStore.open(a.root, embedder) as b:
            b.add(cases[2:4])
            a.add(cases[4:])
    with CaseStore.open(tmp_path / "s", embedder) as s:
        assert not s.warnings and s.manifest.count == len(s) == 6

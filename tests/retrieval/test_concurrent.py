"""Several processes writing one store at once (`evlf cases add` run twice): nothing is lost, the index matches the database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from evlf.retrieval import CaseStore
from evlf.retrieval.store import DB_FILE

from .concurrent_writer import DIM, FixedEmbedder

WRITER = Path(__file__).with_name("concurrent_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def run_writers(store: Path, barrier: Path, writers: int, n: int) -> list[subprocess.CompletedProcess[str]]:
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, str(WRITER), str(store), str(barrier), str(writers), str(i), str(n)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(writers)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def assert_whole(store: Path, expected: set[str]) -> None:
    db = sqlite3.connect(store / DB_FILE)
    in_db = {r[0] for r in db.execute("SELECT case_id FROM cases")}
    db.close()
    assert in_db == expected
    with CaseStore.open(store, FixedEmbedder()) as s:
        assert not s.warnings  # the index on disk was current, not rebuilt on open
        assert s._index.ntotal == len(expected) == s.manifest.count
        # every stored vector is found by the index as its own nearest neighbour
        ids = sorted(expected)
        hits = s.search_vectors(s.vectors(ids), k=1)
        assert [h[0][0].case_id for h in hits] == ids


def test_concurrent_adds_to_existing_store(tmp_path):
    store = tmp_path / "store"
    with CaseStore.create(store, FixedEmbedder()) as s:
        s.add([], vectors=np.zeros((0, DIM), np.float32))
    results = run_writers(store, tmp_path / "barrier", writers=3, n=20)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-400:] for r in results]
    assert_whole(store, {f"w{w}-{i}" for w in range(3) for i in range(20)})


def test_concurrent_creation(tmp_path):
    store = tmp_path / "store"
    results = run_writers(store, tmp_path / "barrier", writers=3, n=10)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-400:] for r in results]
    assert_whole(store, {f"w{w}-{i}" for w in range(3) for i in range(10)})

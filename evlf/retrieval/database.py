"""The SQLite side of the store: the cases and their vectors (the truth), and a generation counter bumped by every write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL UNIQUE,
    specialty TEXT,
    modality TEXT,
    data TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_filter ON cases (specialty, modality);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: A writer waits this long for SQLite's own lock (the store lock normally makes waiting unnecessary).
BUSY_TIMEOUT_S = 60.0


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit mode: every write goes through `transaction`, every read sees the latest commit."""
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)


def initialise(db: sqlite3.Connection, embedder_id: str, dim: int) -> None:
    db.executescript(SCHEMA)
    with transaction(db) as cur:
        cur.executemany("INSERT INTO meta VALUES (?, ?)", [("embedder", embedder_id), ("dim", str(dim)), ("generation", "0")])


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """All or nothing, even on KeyboardInterrupt (the connection runs in autocommit mode otherwise)."""
    cur = db.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
    except BaseException:
        db.rollback()
        raise
    db.commit()


def generation(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def norm(value: str | None) -> str | None:
    """Filter columns are matched case- and space-insensitively."""
    return value.strip().lower() if value else None


def marks(n: int) -> str:
    return ",".join("?" * n)


def all_vectors(db: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every stored (id, vector), in id order: what the index is rebuilt from."""
    rows = db.execute("SELECT id, vector FROM cases ORDER BY id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, dim), np.float32)
    return ids, mat

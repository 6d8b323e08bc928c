"""A backend wrapper that remembers model calls in SQLite, so re-running or resuming an eval repeats none.

The key is a SHA-256 over everything that decides the reply: the system
prompt, every turn's role, text and image bytes (hashed with shape and
dtype), the JSON schema, seed, temperature, max new tokens, and the model
identity (name, family, weights hash, box convention). The request id is left
out: it names a call, it does not change it. Only misses go to the wrapped
backend, all in one batch; identical requests within a batch are sent once.
Replies without any text (a failed call) are not stored, so they are retried.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import ClassVar

from evlf.core.audit.requests import request_key
from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity


class CachingBackend(Backend):
    """Wraps `inner`; stores its Generations in an SQLite file at `path`."""

    name: ClassVar[str] = "cache"

    def __init__(self, inner: Backend, path: str | Path) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # reports name the backend that answered, not the cache
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, generation TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    def _lookup(self, keys: list[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(f"SELECT key, generation FROM generations WHERE key IN ({marks})", chunk).fetchall()
            for key, text in rows:
                found[key] = Generation.model_validate_json(text)
        return found

    def _store(self, items: list[tuple[str, Generation]]) -> None:
        rows = [(k, g.model_dump_json()) for k, g in items if g.text]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO generations (key, generation) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        identity = self.inner.identity
        keys = [request_key(r, identity) for r in requests]
        cached = self._lookup(keys)
        todo: dict[str, GenerationRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in cached and key not in todo:
                todo[key] = request
        if todo:
            fresh = self.inner.generate(list(todo.values()))
            if len(fresh) != len(todo):
                raise RuntimeError(f"backend {self.inner.name!r} returned {len(fresh)} replies for {len(todo)} requests")
            new = list(zip(todo, fresh, strict=True))
            self._store(new)
            cached.update(new)
        self.misses += len(todo)
        self.hits += len(requests) - len(todo)
        return [cached[k].model_copy(deep=True) for k in keys]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def close(self) -> None:
        self.inner.close()
        with self._lock:
            self._db.close()

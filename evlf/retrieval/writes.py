"""Writing a case store: add, update, delete, reindex, each under the cross-process lock with the index reloaded first.

Order of every write: take the store lock; bring this process's index up to the files
(another process may have written since we opened); commit the cases in one SQLite
transaction (bumping the generation); update the index; write the index, then the
manifest, each through a temporary file renamed over the old one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import ConfigError, InputError
from evlf.core.types import LoadedImage
from evlf.retrieval import database as dbm
from evlf.retrieval import index as ix
from evlf.retrieval.case import Case
from evlf.retrieval.embedding import load_case_image, with_image_facts
from evlf.retrieval.locking import StoreLock
from evlf.retrieval.manifest import Manifest, read_manifest, write_manifest
from evlf.retrieval.paths import INDEX_FILE, MANIFEST_FILE


class StoreWrites:
    """The write half of CaseStore (a mixin: CaseStore supplies embedding and reading)."""

    root: Path
    manifest: Manifest
    warnings: list[str]
    _db: sqlite3.Connection
    _index: Any
    _mmapped: bool
    _lock: StoreLock

    def embed(self, images: Sequence[LoadedImage]) -> np.ndarray:
        raise NotImplementedError

    def add(self, cases: Sequence[Case], images: Sequence[LoadedImage] | None = None, vectors: np.ndarray | None = None) -> list[int]:
        """Add cases (all or none). Images are loaded from each case's path unless given; vectors computed unless given."""
        cases = list(cases)
        if not cases:
            return []
        ids = [c.case_id for c in cases]
        dup_in_batch = sorted({c for c in ids if ids.count(c) > 1})
        if dup_in_batch:
            raise InputError(self.root, f"duplicate case id {dup_in_batch[0]!r} in the cases to add")
        self._refuse_existing(ids)  # before embedding, which is the slow part; checked again under the lock
        if vectors is None:
            loaded = list(images) if images is not None else [load_case_image(c) for c in cases]
            cases = [with_image_facts(c, im) for c, im in zip(cases, loaded, strict=True)]
            vectors = self.embed(loaded)
        vectors = self._check_vectors(vectors, len(cases))
        with self._lock.held():
            self._sync()
            self._refuse_existing(ids)
            return self._add_locked(cases, vectors)

    def _add_locked(self, cases: list[Case], vectors: np.ndarray) -> list[int]:
        self._writable()
        total = self._count() + len(cases)
        need = ix.min_train_points(self._index)
        if not self._should_reshape(total) and total < need:
            raise InputError(
                self.root, f"index {self.manifest.factory!r} needs {need} cases to train before the first add; add more at once or use a flat index"
            )
        generation = dbm.generation(self._db) + 1
        with dbm.transaction(self._db) as cur:
            new_ids = []
            for case, vec in zip(cases, vectors, strict=True):
                cur.execute(
                    "INSERT INTO cases (case_id, specialty, modality, data, vector) VALUES (?, ?, ?, ?, ?)",
                    (case.case_id, dbm.norm(case.specialty), dbm.norm(case.modality), case.model_dump_json(), vec.tobytes()),
                )
                new_ids.append(int(cur.lastrowid or 0))
            self._set_generation(cur, generation)
        if self._should_reshape(total):
            self._rebuild_in_memory()
        else:
            ix.train_and_add(self._index, vectors, np.array(new_ids, dtype=np.int64))
        self._persist(generation)
        return new_ids

    def update(self, case: Case, image: LoadedImage | None = None) -> None:
        """Replace a case's record; its vector is recomputed when the image reference changed or an image is given."""
        with self._lock.held():
            self._sync()
            row = self._db.execute("SELECT id, data FROM cases WHERE case_id = ?", (case.case_id,)).fetchone()
            if row is None:
                raise InputError(self.root, f"no case {case.case_id!r} in the store")
            row_id, old = int(row[0]), Case.model_validate_json(row[1])
            vector = None
            if image is not None or (case.image_path, case.frame) != (old.image_path, old.frame):
                image = image or load_case_image(case)
                case = with_image_facts(case, image)
                vector = self._check_vectors(self.embed([image]), 1)
            generation = dbm.generation(self._db) + 1
            with dbm.transaction(self._db) as cur:
                cur.execute(
                    "UPDATE cases SET specialty = ?, modality = ?, data = ? WHERE id = ?",
                    (dbm.norm(case.specialty), dbm.norm(case.modality), case.model_dump_json(), row_id),
                )
                if vector is not None:
                    cur.execute("UPDATE cases SET vector = ? WHERE id = ?", (vector[0].tobytes(), row_id))
                self._set_generation(cur, generation)
            if vector is not None:
                self._writable()
                self._replace_vectors(np.array([row_id], dtype=np.int64), vector)
            self._persist(generation)

    def delete(self, case_ids: Sequence[str]) -> int:
        """Delete cases by id; an unknown id is an error and nothing is deleted."""
        if not case_ids:
            return 0
        with self._lock.held():
            self._sync()
            rows = self._db.execute(f"SELECT id, case_id FROM cases WHERE case_id IN ({dbm.marks(len(case_ids))})", list(case_ids)).fetchall()
            missing = [c for c in case_ids if c not in {r[1] for r in rows}]
            if missing:
                raise InputError(self.root, f"no case {missing[0]!r} in the store")
            row_ids = np.array([r[0] for r in rows], dtype=np.int64)
            generation = dbm.generation(self._db) + 1
            with dbm.transaction(self._db) as cur:
                cur.execute(f"DELETE FROM cases WHERE id IN ({dbm.marks(len(row_ids))})", row_ids.tolist())
                self._set_generation(cur, generation)
            self._writable()
            self._replace_vectors(row_ids, None)
            self._persist(generation)
            return len(row_ids)

    def rebuild_index(self, factory: str | None = None) -> None:
        """Rebuild the faiss index from the vectors in SQLite (after corruption, or to change its type)."""
        with self._lock.held():
            self._sync(load=False)
            if factory is not None:
                ix.new_index(factory, self.manifest.dim)  # validate first
                self.manifest = self.manifest.model_copy(update={"factory": factory, "factory_auto": False, "nprobe": ix.auto_nprobe(factory)})
            self._rebuild_in_memory()
            self._persist(dbm.generation(self._db))

    def set_nprobe(self, nprobe: int) -> None:
        """Lists an inverted-file index probes per query (recall against speed; see benchmarks/retrieval.py); kept in the manifest."""
        if nprobe < 1:
            raise ConfigError(f"nprobe must be at least 1, got {nprobe}")
        with self._lock.held():
            self._sync()
            self.manifest = self.manifest.model_copy(update={"nprobe": nprobe})
            ix.set_nprobe(self._index, nprobe)
            write_manifest(self.root / MANIFEST_FILE, self.manifest)

    # ---- internals (called with the lock held) ---------------------------------

    def _sync(self, load: bool = True) -> None:
        """Catch up with writes other processes made since this one last looked: the files are the truth, not our copy."""
        on_disk = read_manifest(self.root / MANIFEST_FILE)
        db_generation = dbm.generation(self._db)
        current = on_disk.generation == self.manifest.generation == db_generation and on_disk.checksum == self.manifest.checksum
        self.manifest = on_disk
        if current or not load:
            ix.set_nprobe(self._index, self.manifest.nprobe)
            return
        if db_generation == on_disk.generation:
            self._index = ix.load_index(self.root / INDEX_FILE, mmap=False)
            self._mmapped = False
            ix.set_nprobe(self._index, self.manifest.nprobe)
        else:  # a writer died between its commit and its index write: the database is the truth
            self._rebuild_in_memory()
            self._persist(db_generation)

    def _refuse_existing(self, ids: list[str]) -> None:
        rows = self._db.execute(f"SELECT case_id FROM cases WHERE case_id IN ({dbm.marks(len(ids))})", ids).fetchall()
        if rows:
            first = next(c for c in ids if c in {r[0] for r in rows})
            raise InputError(self.root, f"case id {first!r} is already in the store (use update)")

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def _check_vectors(self, vectors: np.ndarray, n: int) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.shape != (n, self.manifest.dim):
            raise ConfigError(f"vectors have shape {v.shape}, expected ({n}, {self.manifest.dim})")
        if not np.isfinite(v).all():
            raise InputError(self.root, "an embedding has non-finite values")
        return v

    @staticmethod
    def _set_generation(cur: sqlite3.Cursor, generation: int) -> None:
        cur.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))

    def _writable(self) -> None:
        """A memory-mapped index is read-only; load it whole before the first write."""
        if self._mmapped:
            self._index = ix.load_index(self.root / INDEX_FILE, mmap=False)
            ix.set_nprobe(self._index, self.manifest.nprobe)
            self._mmapped = False

    def _should_reshape(self, count: int) -> bool:
        return self.manifest.factory_auto and ix.auto_factory(count, self.manifest.dim) != self.manifest.factory

    def _replace_vectors(self, row_ids: np.ndarray, vectors: np.ndarray | None) -> None:
        try:
            self._index.remove_ids(row_ids)
            if vectors is not None:
                self._index.add_with_ids(vectors, row_ids)
        except RuntimeError:  # index types without removal (HNSW, refined): rebuild from the database
            self._rebuild_in_memory()
            return
        if self._should_reshape(self._count()):
            self._rebuild_in_memory()

    def _rebuild_in_memory(self) -> None:
        ids, mat = dbm.all_vectors(self._db, self.manifest.dim)
        factory = ix.auto_factory(len(ids), self.manifest.dim) if self.manifest.factory_auto else self.manifest.factory
        index = ix.new_index(factory, self.manifest.dim)
        if not index.is_trained and len(ids) == 0:
            factory = ix.auto_factory(0, self.manifest.dim)
            index = ix.new_index(factory, self.manifest.dim)
        ix.train_and_add(index, mat, ids)
        keep = not self.manifest.factory_auto and self.manifest.nprobe is not None and factory == self.manifest.factory
        self.manifest = self.manifest.model_copy(update={"factory": factory, "nprobe": self.manifest.nprobe if keep else ix.auto_nprobe(factory)})
        ix.set_nprobe(index, self.manifest.nprobe)
        self._index = index
        self._mmapped = False

    def _persist(self, generation: int) -> None:
        index_path = self.root / INDEX_FILE
        checksum = ix.save_index(self._index, index_path)
        stat = index_path.stat()
        self.manifest = self.manifest.model_copy(
            update={
                "count": int(self._index.ntotal),
                "generation": generation,
                "checksum": checksum,
                "index_size": stat.st_size,
                "index_mtime_ns": stat.st_mtime_ns,
            }
        )
        write_manifest(self.root / MANIFEST_FILE, self.manifest)

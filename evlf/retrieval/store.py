"""The case store: SQLite holds the cases and their vectors (the truth), faiss the index over them, a manifest ties both to one embedder.

Layout of a store folder: `cases.sqlite`, `index.faiss`, `manifest.json`, `store.lock`.
Writes (evlf/retrieval/writes.py) take a cross-process lock and are ordered so an
interrupted one never loses what was stored: the cases commit in one SQLite
transaction, then the index and the manifest are each written to a temporary file
and renamed over the old one. A store whose index lags its database (a crash between
the two) is rebuilt from SQLite on open; a store whose files disagree in any other
way is refused with the file and the problem named.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.embed import Embedder
from evlf.core.errors import ConfigError, InputError
from evlf.core.imaging.guards import sha256_file
from evlf.core.types import LoadedImage
from evlf.retrieval import database as dbm
from evlf.retrieval import index as ix
from evlf.retrieval.case import Case
from evlf.retrieval.embedding import default_embedder, embedder_config, load_case_image, resolve_embedder
from evlf.retrieval.locking import StoreLock
from evlf.retrieval.manifest import Manifest, read_manifest
from evlf.retrieval.paths import DB_FILE, INDEX_FILE, MANIFEST_FILE
from evlf.retrieval.writes import StoreWrites

#: A filter that leaves at most this many cases is ranked exactly from the stored vectors.
EXACT_FILTER_LIMIT = 4096

Hit = tuple[Case, float]


class CaseStore(StoreWrites):
    """Similar-case search over solved cases. Open with `CaseStore.open(path)` or make one with `CaseStore.create`."""

    def __init__(
        self, root: Path, manifest: Manifest, db: sqlite3.Connection, index: Any, embedder: Embedder | None, mmapped: bool, lock: StoreLock | None = None
    ) -> None:
        self.root = root
        self.manifest = manifest
        self._db = db
        self._index = index
        self._embedder = embedder
        self._mmapped = mmapped
        self._lock = lock or StoreLock(root)
        self.warnings: list[str] = []

    # ---- opening and creating -------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, embedder: Embedder, factory: str | None = None) -> CaseStore:
        """A new, empty store for vectors of `embedder`; `factory` (a faiss factory string) fixes the index type."""
        root = Path(path)
        chosen = factory or ix.auto_factory(0, embedder.dim)
        index = ix.new_index(chosen, embedder.dim)  # a bad factory string fails before anything is written
        root.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(root)
        with lock.held():
            if (root / MANIFEST_FILE).exists():
                raise InputError(root, "a case store already exists here")
            db_path = root / DB_FILE
            if db_path.exists():
                db_path.unlink()  # leftover of a creation that never wrote its manifest (no one else can be creating: we hold the lock)
            db = dbm.connect(db_path)
            dbm.initialise(db, embedder.id, embedder.dim)
            manifest = Manifest(
                embedder=embedder.id,
                embedder_config=embedder_config(embedder),
                dim=embedder.dim,
                factory=chosen,
                factory_auto=factory is None,
                nprobe=ix.auto_nprobe(chosen),
            )
            store = cls(root, manifest, db, index, embedder, mmapped=False, lock=lock)
            store._persist(0)
        return store

    @classmethod
    def open(
        cls,
        path: str | Path,
        embedder: Embedder | None = None,
        *,
        mmap: bool = True,
        create: bool = False,
        factory: str | None = None,
        repair: bool = False,
    ) -> CaseStore:
        """Open a store; with `create`, make it (for `embedder`, or the default) when the folder holds none.

        `repair` ignores the index file and rebuilds it from the database (for a corrupt or missing index).
        """
        root = Path(path)
        if not (root / MANIFEST_FILE).exists():
            if not create:
                raise InputError(root, "no case store here (build one with `evlf cases add` or `evlf cases starter`)")
            try:
                return cls.create(root, embedder or default_embedder(), factory)
            except InputError:
                if not (root / MANIFEST_FILE).exists():
                    raise  # otherwise another process created it first: open theirs
        lock = StoreLock(root)
        with lock.for_reading():  # no writer renames files under us while we read them
            return cls._open_locked(root, embedder, lock, mmap=mmap, repair=repair)

    @classmethod
    def _open_locked(cls, root: Path, embedder: Embedder | None, lock: StoreLock, mmap: bool, repair: bool) -> CaseStore:
        manifest = read_manifest(root / MANIFEST_FILE)
        if embedder is not None and embedder.id != manifest.embedder:
            raise ConfigError(
                f"{root}: the store holds vectors of embedder {manifest.embedder!r}, not {embedder.id!r}; "
                "vectors of different embedders never mix (use another store)"
            )
        db_path = root / DB_FILE
        if not db_path.is_file():
            raise InputError(db_path, "case store database is missing")
        db = dbm.connect(db_path)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            count = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            db.close()
            raise InputError(db_path, f"case store database is corrupt ({exc})") from None
        store = cls(root, manifest, db, None, embedder, mmapped=False, lock=lock)
        try:
            store._load(meta, count, mmap, repair)
        except BaseException:
            db.close()
            raise
        return store

    def _load(self, meta: dict[str, str], count: int, mmap: bool, repair: bool) -> None:
        """Load the index the manifest describes, or rebuild it from the database where the database is ahead."""
        manifest, db_path = self.manifest, self.root / DB_FILE
        if meta.get("embedder") != manifest.embedder or int(meta.get("dim", -1)) != manifest.dim:
            raise InputError(db_path, f"database embedder {meta.get('embedder')!r} disagrees with the manifest's {manifest.embedder!r}")
        generation = int(meta.get("generation", 0))
        if generation < manifest.generation:
            raise InputError(self.root / MANIFEST_FILE, f"manifest generation {manifest.generation} is ahead of the database's {generation}")
        if repair:
            self.rebuild_index()
            return
        if generation > manifest.generation:  # the database committed but the index write was interrupted: the database is the truth
            self.rebuild_index()
            self.warnings.append(f"{self.root}: index lagged the database (interrupted write); rebuilt it from {DB_FILE}")
            return
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise InputError(index_path, "case store index file is missing")
        if not _unchanged_since_written(index_path, manifest) and sha256_file(index_path) != manifest.checksum:
            raise InputError(index_path, "case store index does not match its manifest checksum (corrupt); run `evlf cases reindex`")
        self._index = ix.load_index(index_path, mmap)
        self._mmapped = mmap
        if self._index.ntotal != count or manifest.count != count:
            raise InputError(index_path, f"index holds {self._index.ntotal} vectors, manifest {manifest.count}, database {count}; run `evlf cases reindex`")
        ix.set_nprobe(self._index, manifest.nprobe)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- embedder ------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = resolve_embedder(self.manifest.embedder_config)
            if self._embedder.id != self.manifest.embedder:
                raise ConfigError(
                    f"{self.root}: the store was built with {self.manifest.embedder!r} but the installed embedder is {self._embedder.id!r}"
                )
        return self._embedder

    def embed(self, images: Sequence[LoadedImage]) -> np.ndarray:
        vectors = np.asarray(self.embedder.embed(list(images)), dtype=np.float32)
        if vectors.shape != (len(images), self.manifest.dim):
            raise ConfigError(f"embedder {self.embedder.id} returned shape {vectors.shape}, expected ({len(images)}, {self.manifest.dim})")
        return vectors

    # ---- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return self._count()

    def get(self, case_id: str) -> Case:
        row = self._db.execute("SELECT data FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            raise InputError(self.root, f"no case {case_id!r} in the store")
        return Case.model_validate_json(row[0])

    def __contains__(self, case_id: object) -> bool:
        return self._db.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is not None

    def cases(self) -> list[Case]:
        return [Case.model_validate_json(r[0]) for r in self._db.execute("SELECT data FROM cases ORDER BY id")]

    def vectors(self, case_ids: Sequence[str]) -> np.ndarray:
        rows = dict(self._db.execute(f"SELECT case_id, vector FROM cases WHERE case_id IN ({dbm.marks(len(case_ids))})", list(case_ids)).fetchall())
        return np.stack([np.frombuffer(rows[c], dtype=np.float32) for c in case_ids]) if case_ids else np.zeros((0, self.manifest.dim), np.float32)

    def info(self) -> dict[str, Any]:
        by = self._db.execute("SELECT COALESCE(modality, '?'), COUNT(*) FROM cases GROUP BY 1 ORDER BY 1").fetchall()
        bs = self._db.execute("SELECT COALESCE(specialty, '?'), COUNT(*) FROM cases GROUP BY 1 ORDER BY 1").fetchall()
        return {
            "path": str(self.root),
            "count": len(self),
            "embedder": self.manifest.embedder,
            "dim": self.manifest.dim,
            "metric": self.manifest.metric,
            "index": self.manifest.factory,
            "index_auto": self.manifest.factory_auto,
            "nprobe": self.manifest.nprobe,
            "memory_mapped": self._mmapped,
            "checksum": self.manifest.checksum,
            "by_modality": dict(by),
            "by_specialty": dict(bs),
        }

    # ---- search --------------------------------------------------------------

    def search(self, image: LoadedImage, k: int = 5, specialty: str | None = None, modality: str | None = None) -> list[Hit]:
        """The k most similar cases (cosine similarity), filtered by specialty and modality before ranking."""
        return self.search_vectors(self.embed([image]), k, specialty, modality)[0]

    def search_vectors(self, queries: np.ndarray, k: int = 5, specialty: str | None = None, modality: str | None = None) -> list[list[Hit]]:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if q.shape[1] != self.manifest.dim:
            raise ConfigError(f"query vectors have {q.shape[1]} dimensions, the store {self.manifest.dim}")
        if k <= 0 or len(self) == 0:
            return [[] for _ in q]
        allowed = self._filter_ids(specialty, modality)
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in q]
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            return self._exact(q, k, allowed)
        with self._lock.threads:  # a write in another thread of this process may be changing the index
            sims, ids = ix.search(self._index, q, min(k, len(self)), allowed, self.manifest.nprobe)
        return [self._hits(row_ids, row_sims) for row_ids, row_sims in zip(ids, sims, strict=True)]

    def _filter_ids(self, specialty: str | None, modality: str | None) -> np.ndarray | None:
        clauses, args = [], []
        for col, value in (("specialty", specialty), ("modality", modality)):
            if value:
                clauses.append(f"{col} = ?")
                args.append(dbm.norm(value))
        if not clauses:
            return None
        rows = self._db.execute(f"SELECT id FROM cases WHERE {' AND '.join(clauses)}", args).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray) -> list[list[Hit]]:
        rows = self._db.execute(f"SELECT id, vector FROM cases WHERE id IN ({dbm.marks(len(allowed))})", allowed.tolist()).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        sims = q @ mat.T
        out = []
        for row in sims:
            top = np.argsort(-row, kind="stable")[:k]
            out.append(self._hits(ids[top], row[top]))
        return out

    def _hits(self, ids: Iterable[int], sims: Iterable[float]) -> list[Hit]:
        pairs = [(int(i), float(s)) for i, s in zip(ids, sims, strict=True) if i >= 0]
        if not pairs:
            return []
        rows = dict(self._db.execute(f"SELECT id, data FROM cases WHERE id IN ({dbm.marks(len(pairs))})", [p[0] for p in pairs]).fetchall())
        return [(Case.model_validate_json(rows[i]), s) for i, s in pairs if i in rows]


def _unchanged_since_written(path: Path, manifest: Manifest) -> bool:
    """The index file is the one the manifest's writer hashed (same size and modification time): no need to hash gigabytes again.

    A file replaced, truncated or copied has another size or time and is hashed in full; `evlf cases reindex` rebuilds it.
    """
    if manifest.index_size is None or manifest.index_mtime_ns is None:
        return False
    stat = path.stat()
    return stat.st_size == manifest.index_size and stat.st_mtime_ns == manifest.index_mtime_ns


def case_summary(case: Case, similarity: float) -> dict[str, Any]:
    """The JSON a search prints for one hit."""
    return {
        "case_id": case.case_id,
        "similarity": round(similarity, 6),
        "modality": case.modality,
        "specialty": case.specialty,
        "labels": case.labels,
        "body_part": case.body_part,
        "view": case.view,
        "image_path": case.image_path,
        "source": case.source,
        "licence": case.licence,
    }


__all__ = ["DB_FILE", "EXACT_FILTER_LIMIT", "INDEX_FILE", "MANIFEST_FILE", "CaseStore", "Hit", "case_summary", "default_embedder", "load_case_image"]

"""The case store: SQLite holds the cases and their vectors (the truth), faiss the index over them, a manifest ties both to one embedder.

Layout of a store folder: `cases.sqlite`, `index.faiss`, `manifest.json`.
Writes are ordered so an interrupted one never loses what was stored: the
cases commit in one SQLite transaction, then the index and the manifest are
each written to a temporary file and renamed over the old one. A store whose
index lags its database (a crash between the two) is rebuilt from SQLite on
open; a store whose files disagree in any other way is refused with the file
and the problem named.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.embed import Embedder
from evlf.core.errors import ConfigError, InputError
from evlf.core.types import LoadedImage
from evlf.retrieval import index as ix
from evlf.retrieval.case import Case
from evlf.core.imaging.guards import sha256_file
from evlf.retrieval.manifest import Manifest, read_manifest, write_manifest

DB_FILE = "cases.sqlite"
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"

#: A filter that leaves at most this many cases is ranked exactly from the stored vectors.
EXACT_FILTER_LIMIT = 4096

_SCHEMA = """
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

Hit = tuple[Case, float]


def _norm(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def resolve_embedder(config: dict[str, Any]) -> Embedder:
    """Build the embedder a manifest names, through the plugin registry."""
    from evlf.core.plugins import registries

    cfg = dict(config)
    name = cfg.pop("name", None)
    if not name:
        raise ConfigError("the case store manifest does not say how to build its embedder; pass one explicitly")
    return registries().embedders.get(name)(**cfg)


def embedder_config(embedder: Embedder) -> dict[str, Any]:
    cfg: dict[str, Any] = {"name": embedder.name}
    path = getattr(embedder, "path", None)
    if path is not None:
        cfg["path"] = str(path)
    return cfg


class CaseStore:
    """Similar-case search over solved cases. Open with `CaseStore.open(path)` or make one with `CaseStore.create`."""

    def __init__(self, root: Path, manifest: Manifest, db: sqlite3.Connection, index: Any, embedder: Embedder | None, mmapped: bool) -> None:
        self.root = root
        self.manifest = manifest
        self._db = db
        self._index = index
        self._embedder = embedder
        self._mmapped = mmapped
        self._lock = threading.RLock()
        self.warnings: list[str] = []

    # ---- opening and creating -------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, embedder: Embedder, factory: str | None = None) -> CaseStore:
        """A new, empty store for vectors of `embedder`; `factory` (a faiss factory string) fixes the index type."""
        root = Path(path)
        if (root / MANIFEST_FILE).exists():
            raise InputError(root, "a case store already exists here")
        root.mkdir(parents=True, exist_ok=True)
        chosen = factory or ix.auto_factory(0)
        index = ix.new_index(chosen, embedder.dim)  # a bad factory string fails before anything is written
        db_path = root / DB_FILE
        if db_path.exists():
            db_path.unlink()  # leftover of a creation that never wrote its manifest
        db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        db.executescript(_SCHEMA)
        with _transaction(db) as cur:
            cur.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("embedder", embedder.id), ("dim", str(embedder.dim)), ("generation", "0")],
            )
        manifest = Manifest(
            embedder=embedder.id,
            embedder_config=embedder_config(embedder),
            dim=embedder.dim,
            factory=chosen,
            factory_auto=factory is None,
            nprobe=ix.auto_nprobe(chosen),
        )
        store = cls(root, manifest, db, index, embedder, mmapped=False)
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
        manifest_path = root / MANIFEST_FILE
        if not manifest_path.exists():
            if create:
                if embedder is None:
                    embedder = default_embedder()
                return cls.create(root, embedder, factory)
            raise InputError(root, "no case store here (build one with `evlf cases add` or `evlf cases starter`)")
        manifest = read_manifest(manifest_path)
        if embedder is not None and embedder.id != manifest.embedder:
            raise ConfigError(
                f"{root}: the store holds vectors of embedder {manifest.embedder!r}, not {embedder.id!r}; "
                "vectors of different embedders never mix (use another store)"
            )
        db_path = root / DB_FILE
        if not db_path.is_file():
            raise InputError(db_path, "case store database is missing")
        db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            count = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            db.close()
            raise InputError(db_path, f"case store database is corrupt ({exc})") from None
        if meta.get("embedder") != manifest.embedder or int(meta.get("dim", -1)) != manifest.dim:
            db.close()
            raise InputError(
                db_path, f"database embedder {meta.get('embedder')!r} disagrees with the manifest's {manifest.embedder!r}"
            )
        generation = int(meta.get("generation", 0))
        store = cls(root, manifest, db, None, embedder, mmapped=False)
        if repair and generation >= manifest.generation:
            store.rebuild_index()
        elif generation == manifest.generation:
            index_path = root / INDEX_FILE
            if not index_path.is_file():
                db.close()
                raise InputError(index_path, "case store index file is missing")
            if sha256_file(index_path) != manifest.checksum:
                db.close()
                raise InputError(index_path, "case store index does not match its manifest checksum (corrupt); run `evlf cases reindex`")
            store._index = ix.load_index(index_path, mmap)
            store._mmapped = mmap
            if store._index.ntotal != count or manifest.count != count:
                db.close()
                raise InputError(
                    index_path, f"index holds {store._index.ntotal} vectors, manifest {manifest.count}, database {count}; run `evlf cases reindex`"
                )
            ix.set_nprobe(store._index, manifest.nprobe)
        elif generation > manifest.generation:
            # the database committed but the index write was interrupted: the database is the truth
            store.rebuild_index()
            store.warnings.append(f"{root}: index lagged the database (interrupted write); rebuilt it from {DB_FILE}")
        else:
            db.close()
            raise InputError(manifest_path, f"manifest generation {manifest.generation} is ahead of the database's {generation}")
        return store

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
        return int(self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

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
        rows = dict(self._db.execute(f"SELECT case_id, vector FROM cases WHERE case_id IN ({','.join('?' * len(case_ids))})", list(case_ids)).fetchall())
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
        with self._lock:
            sims, ids = ix.search(self._index, q, min(k, len(self)), allowed, self.manifest.nprobe)
        return [self._hits(row_ids, row_sims) for row_ids, row_sims in zip(ids, sims, strict=True)]

    def _filter_ids(self, specialty: str | None, modality: str | None) -> np.ndarray | None:
        clauses, args = [], []
        for col, value in (("specialty", specialty), ("modality", modality)):
            if value:
                clauses.append(f"{col} = ?")
                args.append(_norm(value))
        if not clauses:
            return None
        rows = self._db.execute(f"SELECT id FROM cases WHERE {' AND '.join(clauses)}", args).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray) -> list[list[Hit]]:
        rows = self._db.execute(f"SELECT id, vector FROM cases WHERE id IN ({','.join('?' * len(allowed))})", allowed.tolist()).fetchall()
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
        rows = dict(self._db.execute(f"SELECT id, data FROM cases WHERE id IN ({','.join('?' * len(pairs))})", [p[0] for p in pairs]).fetchall())
        return [(Case.model_validate_json(rows[i]), s) for i, s in pairs if i in rows]

    # ---- writing -------------------------------------------------------------

    def add(self, cases: Sequence[Case], images: Sequence[LoadedImage] | None = None, vectors: np.ndarray | None = None) -> list[int]:
        """Add cases (all or none). Images are loaded from each case's path unless given; vectors computed unless given."""
        cases = list(cases)
        if not cases:
            return []
        with self._lock:
            ids = [c.case_id for c in cases]
            dup_in_batch = sorted({c for c in ids if ids.count(c) > 1})
            if dup_in_batch:
                raise InputError(self.root, f"duplicate case id {dup_in_batch[0]!r} in the cases to add")
            existing = [c for c in ids if c in self]
            if existing:
                raise InputError(self.root, f"case id {existing[0]!r} is already in the store (use update)")
            if vectors is None:
                loaded = list(images) if images is not None else [load_case_image(c) for c in cases]
                cases = [_with_image_facts(c, im) for c, im in zip(cases, loaded, strict=True)]
                vectors = self.embed(loaded)
            vectors = self._check_vectors(vectors, len(cases))
            self._writable()
            need = ix.min_train_points(self._index)
            if not self._should_reshape(len(self) + len(cases)) and len(self) + len(cases) < need:
                raise InputError(
                    self.root, f"index {self.manifest.factory!r} needs {need} cases to train before the first add; add more at once or use a flat index"
                )
            generation = self._generation() + 1
            with self._transaction() as cur:
                new_ids = []
                for case, vec in zip(cases, vectors, strict=True):
                    cur.execute(
                        "INSERT INTO cases (case_id, specialty, modality, data, vector) VALUES (?, ?, ?, ?, ?)",
                        (case.case_id, _norm(case.specialty), _norm(case.modality), case.model_dump_json(), vec.tobytes()),
                    )
                    new_ids.append(int(cur.lastrowid or 0))
                self._set_generation(cur, generation)
            if self._should_reshape(len(self)):
                self._rebuild_in_memory()
            else:
                ix.train_and_add(self._index, vectors, np.array(new_ids, dtype=np.int64))
            self._persist(generation)
            return new_ids

    def update(self, case: Case, image: LoadedImage | None = None) -> None:
        """Replace a case's record; its vector is recomputed when the image reference changed or an image is given."""
        with self._lock:
            old = self.get(case.case_id)
            row_id = int(self._db.execute("SELECT id FROM cases WHERE case_id = ?", (case.case_id,)).fetchone()[0])
            vector = None
            if image is not None or (case.image_path, case.frame) != (old.image_path, old.frame):
                image = image or load_case_image(case)
                case = _with_image_facts(case, image)
                vector = self._check_vectors(self.embed([image]), 1)
            generation = self._generation() + 1
            with self._transaction() as cur:
                cur.execute(
                    "UPDATE cases SET specialty = ?, modality = ?, data = ? WHERE id = ?",
                    (_norm(case.specialty), _norm(case.modality), case.model_dump_json(), row_id),
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
        with self._lock:
            missing = [c for c in case_ids if c not in self]
            if missing:
                raise InputError(self.root, f"no case {missing[0]!r} in the store")
            rows = self._db.execute(f"SELECT id FROM cases WHERE case_id IN ({','.join('?' * len(case_ids))})", list(case_ids)).fetchall()
            row_ids = np.array([r[0] for r in rows], dtype=np.int64)
            generation = self._generation() + 1
            with self._transaction() as cur:
                cur.execute(f"DELETE FROM cases WHERE id IN ({','.join('?' * len(row_ids))})", row_ids.tolist())
                self._set_generation(cur, generation)
            self._writable()
            self._replace_vectors(row_ids, None)
            self._persist(generation)
            return len(row_ids)

    def rebuild_index(self, factory: str | None = None) -> None:
        """Rebuild the faiss index from the vectors in SQLite (after corruption, or to change its type)."""
        with self._lock:
            if factory is not None:
                ix.new_index(factory, self.manifest.dim)  # validate first
                self.manifest = self.manifest.model_copy(update={"factory": factory, "factory_auto": False, "nprobe": ix.auto_nprobe(factory)})
            self._rebuild_in_memory()
            self._persist(self._generation())

    def set_nprobe(self, nprobe: int) -> None:
        """Lists an inverted-file index probes per query (recall against speed; see benchmarks/retrieval.py); kept in the manifest."""
        if nprobe < 1:
            raise ConfigError(f"nprobe must be at least 1, got {nprobe}")
        with self._lock:
            self.manifest = self.manifest.model_copy(update={"nprobe": nprobe})
            ix.set_nprobe(self._index, nprobe)
            write_manifest(self.root / MANIFEST_FILE, self.manifest)

    # ---- internals -----------------------------------------------------------

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        return _transaction(self._db)

    def _check_vectors(self, vectors: np.ndarray, n: int) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.shape != (n, self.manifest.dim):
            raise ConfigError(f"vectors have shape {v.shape}, expected ({n}, {self.manifest.dim})")
        if not np.isfinite(v).all():
            raise InputError(self.root, "an embedding has non-finite values")
        return v

    def _generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

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
        return self.manifest.factory_auto and ix.auto_factory(count) != self.manifest.factory

    def _replace_vectors(self, row_ids: np.ndarray, vectors: np.ndarray | None) -> None:
        try:
            self._index.remove_ids(row_ids)
            if vectors is not None:
                self._index.add_with_ids(vectors, row_ids)
        except RuntimeError:  # index types without removal (HNSW): rebuild from the database
            self._rebuild_in_memory()
            return
        if self._should_reshape(len(self)):
            self._rebuild_in_memory()

    def _rebuild_in_memory(self) -> None:
        rows = self._db.execute("SELECT id, vector FROM cases ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, self.manifest.dim), np.float32)
        factory = ix.auto_factory(len(ids)) if self.manifest.factory_auto else self.manifest.factory
        index = ix.new_index(factory, self.manifest.dim)
        train_needed = not index.is_trained
        if train_needed and len(ids) == 0:
            factory = ix.auto_factory(0)
            index = ix.new_index(factory, self.manifest.dim)
        ix.train_and_add(index, mat, ids)
        keep = not self.manifest.factory_auto and self.manifest.nprobe is not None and factory == self.manifest.factory
        self.manifest = self.manifest.model_copy(update={"factory": factory, "nprobe": self.manifest.nprobe if keep else ix.auto_nprobe(factory)})
        ix.set_nprobe(index, self.manifest.nprobe)
        self._index = index
        self._mmapped = False

    def _persist(self, generation: int) -> None:
        index_path = self.root / INDEX_FILE
        ix.save_index(self._index, index_path)
        self.manifest = self.manifest.model_copy(
            update={"count": int(self._index.ntotal), "generation": generation, "checksum": sha256_file(index_path)}
        )
        write_manifest(self.root / MANIFEST_FILE, self.manifest)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """All or nothing, even on KeyboardInterrupt (the connection runs in autocommit mode otherwise)."""
    cur = db.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
    except BaseException:
        db.rollback()
        raise
    db.commit()


def load_case_image(case: Case) -> LoadedImage:
    from evlf.core.imaging import load_image

    return load_image(case.image_path, frame=case.frame)


def _with_image_facts(case: Case, image: LoadedImage) -> Case:
    """Fill what the image itself tells (hash; modality, body part and view from headers) where the case is silent."""
    meta = image.meta
    return case.model_copy(
        update={
            "image_sha256": case.image_sha256 or image.sha256,
            "modality": case.modality or meta.modality,
            "body_part": case.body_part or meta.body_part,
            "view": case.view or meta.view,
        }
    )


def default_embedder() -> Embedder:
    """The offline default: EfficientNet-Lite0 through the plugin registry."""
    from evlf.core.plugins import registries

    return registries().embedders.get("efficientnet-lite0")()


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


__all__ = ["CaseStore", "Hit", "case_summary", "default_embedder", "load_case_image"]

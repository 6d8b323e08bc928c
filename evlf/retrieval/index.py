"""The faiss side of the store: index type by size, stable int64 ids, filtered search, atomic save, memory-mapped load."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import ConfigError, InputError
from evlf.retrieval.manifest import atomic_write_bytes

#: Below this many vectors an exact (flat) index is fast enough and needs no training.
FLAT_LIMIT = 50_000


def auto_factory(count: int) -> str:
    """Exact search for small stores; an inverted-file index with about sqrt(n) lists (a power of two) above FLAT_LIMIT."""
    if count < FLAT_LIMIT:
        return "IDMap2,Flat"
    nlist = int(2 ** round(math.log2(math.sqrt(count))))
    return f"IVF{nlist},Flat"


def auto_nprobe(factory: str) -> int | None:
    """Lists probed per query: enough for recall@10 >= 0.95 on clustered embeddings (see benchmarks/retrieval.py)."""
    if not factory.startswith("IVF"):
        return None
    nlist = int(factory[3:].split(",")[0].split("_")[0])
    return max(8, nlist // 64)


def new_index(factory: str, dim: int) -> Any:
    """Build an empty index; anything that cannot take ids itself is wrapped in IndexIDMap2."""
    import faiss

    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"bad faiss factory string {factory!r}: {str(exc).splitlines()[0]}") from None
    if not _takes_ids(index):
        index = faiss.IndexIDMap2(index)
    return index


def _takes_ids(index: Any) -> bool:
    import faiss

    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        return True
    try:
        faiss.extract_index_ivf(index)
        return True
    except RuntimeError:
        return False


#: k-means for the inverted lists sees at most this many points per list, for this many iterations (training cost on 2 cores).
TRAIN_POINTS_PER_LIST = 64
TRAIN_ITERATIONS = 10


def train_and_add(index: Any, vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> None:
    import faiss

    if not index.is_trained:
        if len(vectors) == 0:
            return
        limit = len(vectors)
        try:
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.niter = TRAIN_ITERATIONS
            ivf.cp.seed = seed
            ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
            limit = TRAIN_POINTS_PER_LIST * ivf.nlist
        except RuntimeError:
            pass
        rng = np.random.default_rng(seed)
        sample = vectors if len(vectors) <= limit else vectors[np.sort(rng.choice(len(vectors), limit, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))


def min_train_points(index: Any) -> int:
    """Vectors needed before an untrained index can be trained (k-means needs at least as many points as centroids)."""
    import faiss

    if index.is_trained:
        return 0
    need = 1
    try:
        need = faiss.extract_index_ivf(index).nlist
    except RuntimeError:
        pass
    if "PQ" in type(faiss.downcast_index(index)).__name__ or _has_pq(index):
        need = max(need, 256)
    return need


def _has_pq(index: Any) -> bool:
    import faiss

    try:
        ivf = faiss.extract_index_ivf(index)
        return "PQ" in type(faiss.downcast_index(ivf)).__name__
    except RuntimeError:
        return False


def set_nprobe(index: Any, nprobe: int | None) -> None:
    import faiss

    if nprobe is None:
        return
    try:
        faiss.extract_index_ivf(index).nprobe = nprobe
    except RuntimeError:
        pass


def search(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray | None, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by inner product; `allowed` (int64 ids) restricts the search before ranking."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    if allowed is None:
        return index.search(q, k)
    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    try:
        faiss.extract_index_ivf(index)
        params: Any = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or 1)
    except RuntimeError:
        params = faiss.SearchParameters(sel=sel)
    return index.search(q, k, params=params)


def save_index(index: Any, path: Path) -> str:
    """Write the index atomically; returns the sha256 of what was written (hashed in memory, not read back)."""
    import faiss

    data = faiss.serialize_index(index).data  # a memoryview over the bytes: no copy
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_index(path: Path, mmap: bool) -> Any:
    import faiss

    if not path.is_file():
        raise InputError(path, "case store index file is missing")
    try:
        if mmap:
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        if mmap:  # not every index type maps; read it whole instead
            try:
                return faiss.read_index(str(path))
            except RuntimeError:
                pass
        raise InputError(path, f"case store index is corrupt ({str(exc).splitlines()[0][:120]})") from None

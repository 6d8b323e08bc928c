"""The faiss side of the store: index type by size, stable int64 ids, filtered search, atomic save, memory-mapped load."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from evlf.core.errors import ConfigError, InputError
from evlf.core.imaging.guards import sha256_file

#: Below this many vectors an exact (flat) index is fast enough and needs no training.
FLAT_LIMIT = 50_000


def auto_factory(count: int, dim: int) -> str:
    """Exact search for small stores; above FLAT_LIMIT an inverted file of 4-bit PQ codes scanned in SIMD, with an exact re-rank (see docs/retrieval.md).

    About sqrt(n) lists (a power of two): on clustered data more lists split the clusters and
    need a larger share probed; an HNSW graph over the centroids finds the lists to probe
    without scanning every centroid; `PQ{dim}x4fs` gives every dimension a 4-bit code (half a
    byte) that faiss' fast-scan kernels compare 32 vectors at a time from registers, several
    times cheaper per vector than SQ8's decoding; `RFlat` re-ranks a shortlist of
    PQ_REFINE_K_FACTOR x k exactly on the float32 vectors, so recall is that of the inverted
    file, not of the codes (measured at 1M x 1280: same recall@10 as SQ8 at the same probe).
    """
    if count < FLAT_LIMIT:
        return "IDMap2,Flat"
    nlist = int(2 ** round(math.log2(math.sqrt(count))))
    return f"IVF{nlist}_HNSW32,PQ{dim}x4fs,RFlat"


def auto_nprobe(factory: str) -> int | None:
    """Lists probed per query: enough for recall@10 >= 0.95 with a margin on clustered embeddings (see benchmarks/retrieval.py)."""
    found = re.search(r"IVF(\d+)", factory)
    if found is None:
        return None
    return max(10, int(found.group(1)) // 100)


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
    """Only an IDMap or a bare inverted file stores ids; a refined or transformed index answers with positions."""
    import faiss

    return isinstance(faiss.downcast_index(index), faiss.IndexIDMap | faiss.IndexIDMap2 | faiss.IndexIVF)


#: k-means for the inverted lists sees at most this many points per list, for this many iterations (training cost on 2 cores).
TRAIN_POINTS_PER_LIST = 64
#: ...and at most this many in all (1.3 GB at 1280 dimensions), which bounds training time and memory at any size.
TRAIN_MAX_POINTS = 262_144
TRAIN_ITERATIONS = 10
#: From this many lists on, k-means runs in two levels (sqrt(nlist) coarse clusters, then each split): minutes become seconds.
TWO_LEVEL_FROM = 4096
#: A shortlist this many times k is re-ranked exactly by a refined index (8-bit codes rank closely enough for a short one)...
REFINE_K_FACTOR = 4
#: ...and this many times k behind 4-bit PQ codes, whose coarser scores need a longer shortlist for the same recall
#: (1M x 1280 at nprobe 8: 8 -> 0.941, 16 and 32 -> 0.950; at nprobe 10 16 and 32 -> 0.962, and 16 re-ranks half as many).
PQ_REFINE_K_FACTOR = 16


def train_and_add(index: Any, vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> None:
    if not index.is_trained:
        if len(vectors) == 0:
            return
        _train(index, vectors, seed)
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))


def _train(index: Any, vectors: np.ndarray, seed: int) -> None:
    """Train on a sample (freed before the vectors are added: 1.3 GB at 1M x 1280)."""
    import faiss

    ivf = _ivf(index)
    limit = min(TRAIN_POINTS_PER_LIST * ivf.nlist, TRAIN_MAX_POINTS) if ivf is not None else len(vectors)
    rng = np.random.default_rng(seed)
    sample = vectors if len(vectors) <= limit else vectors[np.sort(rng.choice(len(vectors), limit, replace=False))]
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if ivf is not None:
        ivf.cp.niter = TRAIN_ITERATIONS
        ivf.cp.seed = seed
        ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        if ivf.nlist >= TWO_LEVEL_FROM and ivf.quantizer.ntotal == 0 and len(sample) >= ivf.nlist:
            ivf.quantizer.add(two_level_centroids(sample, ivf.nlist, seed))  # IVF.train then skips its own k-means
    index.train(sample)
    refine = _refine(index)
    if refine is not None:
        refine.k_factor = PQ_REFINE_K_FACTOR if "PQ" in type(faiss.downcast_index(refine.base_index)).__name__ else REFINE_K_FACTOR


def two_level_centroids(x: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    """k-means in two levels: sqrt(nlist) coarse clusters, then each split into centroids in proportion to its size.

    faiss.contrib's two_level_clustering can give an uneven (real) mix a coarse cluster of
    zero centroids and fail; here every cluster gets at least one and no more than its points.
    """
    import faiss

    nc1 = int(math.sqrt(nlist))
    coarse = faiss.Kmeans(x.shape[1], nc1, niter=TRAIN_ITERATIONS, seed=seed, max_points_per_centroid=2000)
    coarse.train(x)
    _, assign = coarse.index.search(x, 1)
    assign = assign[:, 0]
    sizes = np.bincount(assign, minlength=nc1)
    share = np.minimum(sizes, np.maximum(1, np.floor(sizes * nlist / sizes.sum()).astype(int)))
    while share.sum() < nlist:  # hand out the rest to the clusters with the most points per centroid
        share[np.argmax(np.where(share < sizes, sizes / np.maximum(share, 1), -1))] += 1
    while share.sum() > nlist:
        share[np.argmax(share)] -= 1
    out = []
    for c in range(nc1):
        members = x[assign == c]
        if share[c] == 0 or len(members) == 0:
            continue
        if share[c] >= len(members):
            out.append(members[: share[c]])
            continue
        km = faiss.Kmeans(x.shape[1], int(share[c]), niter=TRAIN_ITERATIONS, seed=seed + c, max_points_per_centroid=TRAIN_POINTS_PER_LIST)
        km.train(np.ascontiguousarray(members))
        out.append(km.centroids)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _ivf(index: Any) -> Any | None:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _refine(index: Any) -> Any | None:
    """The IndexRefine inside an IDMap wrapper, if any."""
    import faiss

    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexIDMap | faiss.IndexIDMap2):
        inner = faiss.downcast_index(inner.index)
    return inner if isinstance(inner, faiss.IndexRefine) else None


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
    """Lists to probe; an HNSW coarse quantiser then searches its graph wide enough to find them."""
    import faiss

    ivf = _ivf(index)
    if nprobe is None or ivf is None:
        return
    ivf.nprobe = nprobe
    quantizer = faiss.downcast_index(ivf.quantizer)
    if isinstance(quantizer, faiss.IndexHNSW):
        quantizer.hnsw.efSearch = max(64, 2 * nprobe)


def search(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray | None, nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by inner product; `allowed` (int64 ids) restricts the search before ranking."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    if allowed is None:
        return index.search(q, k)
    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    if _ivf(index) is None:
        return index.search(q, k, params=faiss.SearchParameters(sel=sel))
    refine = _refine(index)
    if refine is None:
        return index.search(q, k, params=faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or 1))
    # IDMap translates only a top-level selector, but the inverted file inside the refine step is
    # what must filter: hand it the selector already translated from ids to positions.
    by_position = faiss.IDSelectorTranslated(faiss.downcast_index(index).id_map, sel)
    base = faiss.SearchParametersIVF(sel=by_position, nprobe=nprobe or 1)
    params = faiss.IndexRefineSearchParameters(k_factor=refine.k_factor, base_index_params=base)
    return index.search(q, k, params=params)


def save_index(index: Any, path: Path) -> str:
    """Write the index atomically, straight to a file (a serialized copy in memory would double a 6 GB index); returns its sha256."""
    import faiss

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        faiss.write_index(index, str(tmp))
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        checksum = sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return checksum


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

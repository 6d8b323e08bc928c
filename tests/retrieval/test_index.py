"""The faiss side: the index the store picks by size, two-level training on an uneven mix, filtered search through a refined index."""

from __future__ import annotations

import numpy as np

from evlf.retrieval import index as ix


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_factory_follows_size():
    assert ix.auto_factory(ix.FLAT_LIMIT - 1, 1280) == "IDMap2,Flat" and ix.auto_nprobe("IDMap2,Flat") is None
    big = ix.auto_factory(1_000_000, 1280)
    assert big == "IVF1024_HNSW32,PQ1280x4fs,RFlat" and ix.auto_nprobe(big) == 10
    assert ix.auto_nprobe("PCA256,IVF4096,Flat") == 40 and ix.auto_nprobe("IVF8192,Flat") == 81  # the list count is found behind a transform too


def test_four_bit_codes_get_the_longer_shortlist_and_exact_similarities():
    rng = np.random.default_rng(5)
    x = unit_rows(rng.standard_normal((4000, 32)))
    ids = np.arange(4000, dtype=np.int64) * 5 + 1
    index = ix.new_index(ix.auto_factory(ix.FLAT_LIMIT, 32).replace("IVF256", "IVF16"), 32)
    ix.train_and_add(index, x, ids)
    ix.set_nprobe(index, 16)
    assert ix._refine(index).k_factor == ix.PQ_REFINE_K_FACTOR
    sims, found = index.search(x[:3], 4)
    assert (found[:, 0] == ids[:3]).all() and np.allclose(sims[:, 0], 1.0, atol=1e-5)
    exact = np.sort(x @ x[:3].T, axis=0)[::-1][:4].T
    assert np.allclose(sims, exact, atol=1e-5)  # re-ranked on float32: the similarities are exact, not the codes' estimates


def test_two_level_training_on_an_uneven_mix():
    """Most points in one tight blob (as one modality dominates a real store): every list still gets a centroid."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12_000, 16)).astype(np.float32)
    x[:10_000] = x[:10_000] * 0.01 + 1.0
    centroids = ix.two_level_centroids(unit_rows(x), 4096)
    assert centroids.shape == (4096, 16) and np.isfinite(centroids).all()


def test_refined_index_filters_by_id_before_ranking():
    rng = np.random.default_rng(1)
    x = unit_rows(rng.standard_normal((3000, 16)))
    ids = np.arange(3000, dtype=np.int64) * 3 + 7  # ids are not positions
    index = ix.new_index("IVF64_HNSW32,SQ8,RFlat", 16)
    ix.train_and_add(index, x, ids)
    ix.set_nprobe(index, 64)
    sims, found = index.search(x[:1], 1)
    assert found[0, 0] == 7 and abs(sims[0, 0] - 1.0) < 1e-5  # the re-rank gives exact similarities
    allowed = ids[1::2]  # excludes the query's own id
    sims, found = ix.search(index, x[:5], 5, allowed, 64)
    assert set(found.ravel()) <= set(allowed.tolist())
    exact = x[1::2] @ x[:5].T
    assert np.allclose(sims[:, 0], exact.max(axis=0), atol=1e-5)  # the best allowed case, found exactly

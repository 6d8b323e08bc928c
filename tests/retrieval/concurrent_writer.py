"""One writer process for the concurrency tests: open (or create) a store, wait for its peers, add cases.

Run as `python concurrent_writer.py STORE BARRIER_DIR WRITERS INDEX N`: it opens the store, marks itself
ready in BARRIER_DIR, waits until all WRITERS are ready (so every writer holds the store open before any
writes: the interleaving that lost cases), then adds N cases with given vectors.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from evlf.core.embed import Embedder
from evlf.core.types import LoadedImage
from evlf.retrieval import Case, CaseStore

DIM = 16


class FixedEmbedder(Embedder):
    """Never called: vectors are given. Only its id and dim reach the store."""

    name: ClassVar[str] = "colour-test"
    dim = DIM
    version = "1"

    def embed(self, images: list[LoadedImage]) -> np.ndarray:
        raise AssertionError("the writer passes vectors; nothing should embed")


def wait_for_peers(barrier: Path, writers: int, me: int, timeout: float = 60.0) -> None:
    (barrier / f"ready-{me}").touch()
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob("ready-*"))) < writers:
        if time.monotonic() > deadline:
            raise SystemExit(f"writer {me}: peers never became ready")
        time.sleep(0.01)


def main(store: str, barrier: str, writers: str, me: str, n: str) -> None:
    who, count = int(me), int(n)
    rng = np.random.default_rng(who)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cases = [Case(case_id=f"w{who}-{i}", image_path=f"/nonexistent/w{who}-{i}.png", modality="CT") for i in range(count)]
    create = not (Path(store) / "manifest.json").exists()
    if create:  # race the creation itself: everyone arrives before anyone creates
        wait_for_peers(Path(barrier), int(writers), who)
    with CaseStore.open(store, FixedEmbedder(), create=True) as s:
        if not create:
            wait_for_peers(Path(barrier), int(writers), who)
        s.add(cases, vectors=vectors)


if __name__ == "__main__":
    main(*sys.argv[1:])

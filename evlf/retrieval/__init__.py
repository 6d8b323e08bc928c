"""Retrieval of similar solved cases: the case store, few-shot selection, the starter bank.

    store = CaseStore.open(path)                       # or CaseStore.create(path, embedder)
    hits = store.search(image, k=5, modality="CT")     # [(Case, cosine similarity), ...]
    chosen = select_exemplars(store, image, k=3, specialty="radiology")
    shot = exemplar_turns(chosen, convention)          # shot.turns (chat), shot.exemplars (report)

Names load on first use, so `evlf.retrieval.paths` (what the CLI reads at start) costs no store import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Case": "case",
    "read_dataset": "case",
    "Budget": "fewshot",
    "FewShot": "fewshot",
    "Selected": "fewshot",
    "case_answer_text": "fewshot",
    "exemplar_turns": "fewshot",
    "select_exemplars": "fewshot",
    "CaseStore": "store",
    "Hit": "store",
    "case_summary": "store",
    "default_embedder": "embedding",
    "default_store_path": "paths",
}

if TYPE_CHECKING:
    from evlf.retrieval.case import Case, read_dataset
    from evlf.retrieval.embedding import default_embedder
    from evlf.retrieval.fewshot import Budget, FewShot, Selected, case_answer_text, exemplar_turns, select_exemplars
    from evlf.retrieval.paths import default_store_path
    from evlf.retrieval.store import CaseStore, Hit, case_summary


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'evlf.retrieval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"evlf.retrieval.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = sorted(_WHERE)

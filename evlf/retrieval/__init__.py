"""Retrieval of similar solved cases: the case store, few-shot selection, the starter bank.

    store = CaseStore.open(path)                       # or CaseStore.create(path, embedder)
    hits = store.search(image, k=5, modality="CT")     # [(Case, cosine similarity), ...]
    chosen = select_exemplars(store, image, k=3, specialty="radiology")
    shot = exemplar_turns(chosen, convention)          # shot.turns (chat), shot.exemplars (report)
"""

from evlf.retrieval.case import Case, read_dataset
from evlf.retrieval.fewshot import Budget, FewShot, Selected, case_answer_text, exemplar_turns, select_exemplars
from evlf.retrieval.store import CaseStore, Hit, case_summary, default_embedder

__all__ = [
    "Budget",
    "Case",
    "CaseStore",
    "FewShot",
    "Hit",
    "Selected",
    "case_answer_text",
    "case_summary",
    "default_embedder",
    "exemplar_turns",
    "read_dataset",
    "select_exemplars",
]

"""Which solved cases may be shown to the model for one study, and what to tell the user when none may.

Exemplars stay inside the study's modality (a CT case teaches nothing about a
slide) unless the caller allows crossing it; a store whose cases carry no
labels, or holds none of this modality, is reported instead of silently
yielding nothing.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, Field

from evlf.core.evidence import normalize_modality
from evlf.core.types import LoadedImage
from evlf.retrieval.fewshot import Selected, select_exemplars
from evlf.retrieval.store import CaseStore

#: Canonical codes that are one modality for choosing examples (a CR and a DX radiograph look alike).
SAME_MODALITY: dict[str, str] = {"CR": "DX"}

ADD_LABELLED = "add labelled cases with `evlf cases add DATA.jsonl` (docs/dataset-format.md)"


class Choice(BaseModel):
    """The exemplars chosen and, when there are none, why (a report warning)."""

    selected: list[Selected] = Field(default_factory=list)
    warning: str | None = None


def modality_family(value: str | None) -> str | None:
    """A stored or DICOM modality value -> the family examples are matched on ('fundus' -> 'OP', 'CR' -> 'DX')."""
    code = normalize_modality(value)
    return SAME_MODALITY.get(code, code) if code else None


def stored_values(store: CaseStore, families: Collection[str]) -> list[str]:
    """The modality values as the store spells them that belong to `families`."""
    by_modality = store.info()["by_modality"]
    return [value for value in by_modality if modality_family(value) in families]


def choose_exemplars(
    store: CaseStore,
    image: LoadedImage,
    k: int,
    *,
    specialty: str,
    modalities: Collection[str],
    cross_modality: bool = False,
) -> Choice:
    """Up to k labelled cases: the specialty's first, then any specialty's; both within the study's modality unless `cross_modality`.

    `modalities` are the study's canonical codes (empty when unknown: then only
    the specialty's own cases qualify, since nothing says which modality they
    must share).
    """
    families = {f for f in (modality_family(m) for m in modalities) if f}
    allowed: list[str] | None = None if cross_modality else stored_values(store, families)
    if allowed is None or families:
        selected = select_exemplars(store, image, k, specialty=specialty, modality=allowed)
        if not selected and (cross_modality or families):
            selected = select_exemplars(store, image, k, modality=allowed)
    else:
        selected = select_exemplars(store, image, k, specialty=specialty)
    if selected:
        return Choice(selected=selected)
    return Choice(warning=_why_none(store, specialty, sorted(families), cross_modality))


def _why_none(store: CaseStore, specialty: str, families: list[str], cross_modality: bool) -> str:
    labelled = sum(1 for case in store.cases() if case.labels or case.answer)
    if labelled == 0:
        return (
            f"no exemplars: the case store holds {len(store)} cases, none with labels or an answer "
            f"(the `evlf cases starter` bank has no diagnoses); {ADD_LABELLED}"
        )
    if cross_modality:
        return f"no exemplars: no labelled case in the case store suits this study; {ADD_LABELLED}"
    if not families:
        return (
            f"no exemplars: no labelled {specialty} case in the case store, and the study's modality is unknown "
            "(give it, e.g. --modality, to use other specialties' cases of the same modality)"
        )
    return (
        f"no exemplars: no labelled {'/'.join(families)} case in the case store; cases of other modalities are not used "
        "(Context cross_modality_exemplars=True allows them)"
    )

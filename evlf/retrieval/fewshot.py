"""Few-shot selection: similar solved cases, diverse (maximal marginal relevance) and label-balanced, within a budget of images and tokens; and their rendering as earlier chat turns.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evlf.core.answer import AnswerFinding, EvlfAnswer
from evlf.core.backends.base import Turn
from evlf.core.errors import InputError
from evlf.core.geometry import BoxCodec, BoxConvention
from evlf.core.types import Box, Exemplar, LoadedImage
from evlf.retrieval.case import Case
from evlf.retrieval.store import CaseStore, load_case_image

EXEMPLAR_PROMPT = "Worked example. Read this {modality} image and answer in the EVLF format."


class Budget(BaseModel):
    """How much of the model's context the exemplars may take."""

    max_images: int = Field(3, ge=0)
    max_tokens: int = Field(2048, ge=0)
    tokens_per_image: int = Field(256, ge=0)  # rough visual-token cost of one exemplar image


class Selected(BaseModel):
    case: Case
    similarity: float


class FewShot(BaseModel):
    """Exemplars as chat turns (user: image + prompt, assistant: EVLF answer) and as report records."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    turns: list[Turn] = Field(default_factory=list)
    exemplars: list[Exemplar] = Field(default_factory=list)


def estimate_tokens(text: str) -> int:
    """About four characters per token; enough to keep a budget, not to bill by."""
    return math.ceil(len(text) / 4)


def case_answer_text(case: Case, convention: BoxConvention = BoxConvention.UNIT, size: tuple[int, int] | None = None) -> str:
    """The case's answer in the EVLF format `<think>..</think><answer>{json}</answer>`.

    A stored EVLF answer is used as it is; otherwise one is written from the
    case's labels and boxes (boxes encoded in `convention`, which needs the
    image size), and the think part says only what the record holds.
    """
    if case.answer and "<answer>" in case.answer:
        return case.answer
    if case.answer:
        try:
            parsed = EvlfAnswer.model_validate_json(case.answer)
            return f"<think>{_think(case)}</think><answer>{parsed.model_dump_json(exclude_none=True)}</answer>"
        except ValueError:
            pass  # a free-text reference answer: fall through, keep it as the answer field
    if not case.labels and not case.answer:
        raise InputError(case.case_id, "case has neither labels nor an answer to show as an example")
    findings = []
    for i, coords in enumerate(case.boxes):
        label = case.box_labels[i] if i < len(case.box_labels) else (case.labels[0] if case.labels else "finding")
        box = None
        if size is not None:
            codec = BoxCodec(convention, size)
            box = codec.encode(Box(x0=coords[0], y0=coords[1], x1=coords[2], y1=coords[3]), precision=3)
        findings.append(AnswerFinding(label=label, confidence=1.0, box=box))
    answer = EvlfAnswer(
        diagnosis=case.labels[0] if case.labels else "see answer",
        confidence=1.0,
        findings=findings,
        answer=case.answer,
    )
    return f"<think>{_think(case)}</think><answer>{json.dumps(answer.model_dump(exclude_none=True), separators=(',', ':'))}</answer>"


def _think(case: Case) -> str:
    parts = [p for p in (case.modality, case.body_part, case.view) if p]
    seen = " ".join(parts) or "image"
    if case.report:
        return f"{seen}. {case.report}"
    if case.labels:
        return f"{seen}; recorded findings: {', '.join(case.labels)}."
    return f"{seen}."


def _answer_tokens(case: Case) -> int:
    """Token estimate of the case's answer; boxes are counted at a placeholder size (their digits, not their values, cost tokens)."""
    return estimate_tokens(case_answer_text(case, BoxConvention.GRID_1000, (1000, 1000)))


def _usable(case: Case) -> bool:
    return bool(case.labels or case.answer)


def select_exemplars(
    store: CaseStore,
    image: LoadedImage,
    k: int = 3,
    *,
    specialty: str | None = None,
    modality: str | Sequence[str] | None = None,
    budget: Budget | None = None,
    diversity: float = 0.3,
    pool: int = 20,
    balance_labels: bool = True,
    exclude_sha256: str | None = None,
) -> list[Selected]:
    """Pick up to k exemplars for `image`: relevant (similarity), diverse (MMR with weight `diversity`) and label-balanced.

    `modality` is one stored modality value or several (the spellings of one
    modality: "fundus", "op"). Cases without labels or an answer teach nothing
    and are skipped; the query image itself (same sha256) is never its own example.
    """
    budget = budget or Budget()
    k = min(k, budget.max_images)
    if k <= 0 or len(store) == 0:
        return []
    query = store.embed([image])
    exclude = exclude_sha256 or image.sha256
    hits = [(c, s) for c, s in _search(store, query, max(pool, k), specialty, modality) if _usable(c) and c.image_sha256 != exclude]
    if not hits:
        return []
    vecs = store.vectors([c.case_id for c, _ in hits])
    rel = np.array([s for _, s in hits], dtype=np.float32)
    labels = [c.labels[0] if c.labels else "" for c, _ in hits]
    cap = max(1, math.ceil(k / len(set(labels)))) if balance_labels else k
    chosen: list[int] = []
    per_label: Counter[str] = Counter()
    tokens = 0
    remaining = list(range(len(hits)))
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = (vecs[remaining] @ vecs[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining), dtype=np.float32)
        scores = (1 - diversity) * rel[remaining] - diversity * redundancy
        order = [remaining[i] for i in np.argsort(-scores, kind="stable")]
        pick = next((i for i in order if per_label[labels[i]] < cap), order[0])
        remaining.remove(pick)
        cost = budget.tokens_per_image + _answer_tokens(hits[pick][0]) + estimate_tokens(EXEMPLAR_PROMPT)
        if tokens + cost > budget.max_tokens:
            continue
        tokens += cost
        chosen.append(pick)
        per_label[labels[pick]] += 1
    return [Selected(case=hits[i][0], similarity=float(rel[i])) for i in chosen]


def _search(store: CaseStore, query: np.ndarray, n: int, specialty: str | None, modality: str | Sequence[str] | None) -> list[tuple[Case, float]]:
    """The n nearest cases under the filters; several modality values are searched one by one and merged."""
    if modality is None or isinstance(modality, str):
        return store.search_vectors(query, n, specialty, modality)[0]
    hits = [hit for value in dict.fromkeys(modality) for hit in store.search_vectors(query, n, specialty, value)[0]]
    return sorted(hits, key=lambda hit: -hit[1])[:n]


def exemplar_turns(
    selected: list[Selected],
    convention: BoxConvention = BoxConvention.UNIT,
    prompt: str = EXEMPLAR_PROMPT,
    load: Callable[[Case], LoadedImage] = load_case_image,
) -> FewShot:
    """Each exemplar becomes a user turn (its image as 8-bit RGB and a short prompt) and an assistant turn (its EVLF answer)."""
    shot = FewShot()
    for item in selected:
        case = item.case
        image = load(case)
        answer = case_answer_text(case, convention, (image.width, image.height))
        shot.turns.append(Turn(role="user", text=prompt.format(modality=case.modality or "medical"), images=[image.rgb]))
        shot.turns.append(Turn(role="assistant", text=answer))
        shot.exemplars.append(
            Exemplar(
                case_id=case.case_id,
                similarity=item.similarity,
                modality=case.modality,
                specialty=case.specialty,
                labels=case.labels,
                source=case.source,
                licence=case.licence,
                image_path=case.image_path,
                answer=answer,
            )
        )
    return shot

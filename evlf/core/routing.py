"""Routing: which specialties read a study, and the modality gate that refuses the rest.

Order of authority: the user's explicit `Study.specialty` (comma-separated
names allowed; `Study.metadata["specialty"]` as a fallback, as datasets give it), then the first plugin answering `select_specialties`, then the
specialties' own scores. An allow-list (from the caller) narrows every path.
A study no specialty accepts is refused with `RoutingRefused`, whose message
says what was seen, instead of being pushed to the wrong specialist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from evlf.core.errors import InputError, PluginError
from evlf.core.evidence import study_evidence
from evlf.core.types import LoadedImage, Study

if TYPE_CHECKING:  # pragma: no cover
    from evlf.core.plugins import PluginHost

#: Scores within this distance of the best one are routed too (the graph fans out to each).
TIE_MARGIN = 0.1


class RoutingRefused(InputError):
    """No specialty accepts the study; `seen` describes the images, `scores` what each specialty said."""

    def __init__(self, study_id: str, seen: str, scores: dict[str, float], hint: str = "") -> None:
        self.seen = seen
        self.scores = scores
        scored = ", ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items())) or "no specialties registered"
        problem = f"no specialty accepts this study (seen: {seen}; scores: {scored})"
        if hint:
            problem += f"; {hint}"
        super().__init__(study_id, problem)


class Route(BaseModel):
    """The routing decision the triage node records."""

    chosen: list[str] = Field(min_length=1)
    scores: dict[str, float]
    reason: Literal["explicit", "hook", "scores"]
    seen: str
    warnings: list[str] = Field(default_factory=list)


def _score_all(
    host: PluginHost, study: Study, images: list[LoadedImage], allow: set[str] | None
) -> tuple[dict[str, float], list[str]]:
    scores: dict[str, float] = {}
    warnings: list[str] = []
    for entry in host.registries.specialties.entries():
        if allow is not None and entry.name not in allow:
            continue
        try:
            value = float(entry.obj.score(study, images))
        except Exception as exc:  # a broken specialty declines; it must not take routing down
            warnings.append(f"specialty {entry.name!r} (plugin {entry.plugin!r}) failed to score: {type(exc).__name__}: {exc}")
            value = 0.0
        scores[entry.name] = min(1.0, max(0.0, value if value == value else 0.0))
    return scores, warnings


def _names(raw: str | Iterable[str] | None) -> set[str] | None:
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return {n.strip() for n in items if n and n.strip()}


def route(
    study: Study,
    images: list[LoadedImage],
    *,
    allow: str | Iterable[str] | None = None,
    host: PluginHost | None = None,
    margin: float = TIE_MARGIN,
) -> Route:
    """Choose the specialties for a study, or raise RoutingRefused (an InputError) when none accepts it."""
    if host is None:
        from evlf.core.plugins import get_host

        host = get_host()
    allowed = _names(allow)
    known = host.registries.specialties
    seen = study_evidence(study, images).describe()
    scores, warnings = _score_all(host, study, images, allowed)

    def check_known(names: list[str], source: str) -> None:
        unknown = [n for n in names if n not in known]
        if unknown:
            listing = ", ".join(known.names()) or "none"
            raise InputError(study.id, f"{source} names unknown specialty {', '.join(map(repr, unknown))} (known: {listing})")
        barred = [n for n in names if allowed is not None and n not in allowed]
        if barred:
            raise InputError(study.id, f"{source} names specialty {', '.join(map(repr, barred))} outside the allow-list {sorted(allowed or ())}")

    requested = study.specialty or (study.metadata or {}).get("specialty")
    explicit = sorted(_names(requested if isinstance(requested, str) else None) or ())
    if explicit:
        check_known(explicit, "the study")
        return Route(chosen=explicit, scores=scores, reason="explicit", seen=seen, warnings=warnings)

    override = host.hook.select_specialties(study=study, images=images, scores=dict(scores))
    if override is not None:
        names = list(dict.fromkeys(override))
        if not all(isinstance(n, str) for n in names):
            raise PluginError(f"select_specialties returned non-names: {override!r}")
        try:
            check_known(names, "a select_specialties hook")
        except InputError as exc:
            raise PluginError(exc.problem) from None
        if not names:
            raise RoutingRefused(study.id, seen, scores, "a select_specialties hook declined every specialty")
        return Route(chosen=names, scores=scores, reason="hook", seen=seen, warnings=warnings)

    accepted = {k: v for k, v in scores.items() if v > 0}
    if not accepted:
        hint = (
            "name a specialty (Study.specialty / --specialty) or give Study.metadata['modality'] / --modality "
            "(e.g. 'dermoscopy', 'fundus', 'pathology', 'CT') and ['body_part'] / --body-part (e.g. 'chest', 'liver')"
        )
        if allowed is not None:
            hint = f"allowed specialties: {', '.join(sorted(allowed)) or 'none'}; " + hint
        raise RoutingRefused(study.id, seen, scores, hint)
    best = max(accepted.values())
    chosen = sorted((k for k, v in accepted.items() if v >= best - margin), key=lambda k: (-accepted[k], k))
    return Route(chosen=chosen, scores=scores, reason="scores", seen=seen, warnings=warnings)

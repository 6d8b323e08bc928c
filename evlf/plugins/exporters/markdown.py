"""Markdown rendering of a Report, for notes, tickets and terminals."""

from __future__ import annotations

import html
from typing import Any

from evlf.core.types import Report
from evlf.plugins.exporters.text import NOT_CLINICAL, box_text, model_banner


def _t(text: object) -> str:
    """User and model text as inert Markdown: no raw HTML, no links, no table breaks."""
    escaped = html.escape(str(text), quote=False)
    for ch in "\\[]|`":
        escaped = escaped.replace(ch, "\\" + ch)
    return " ".join(escaped.split())


def render_markdown(report: Report, images: list[Any] | None = None) -> str:
    lines = [f"# evlf report: {_t(report.study_id)}", "", f"> **{NOT_CLINICAL}**"]
    banner = model_banner(report)
    if banner:
        lines += [">", f"> **{banner}**"]
    lines += ["", f"Specialties: {', '.join(report.specialties) or '-'} · task: {report.task}"]
    if report.question:
        lines += ["", f"**Question:** {_t(report.question)}", "", f"**Answer:** {_t(report.answer or '-')}"]
    if report.diagnosis:
        d = report.diagnosis
        code = f" ({_t(d.code)})" if d.code else ""
        lines += ["", "## Diagnosis", "", f"**{_t(d.primary)}**{code}, confidence {d.confidence:.2f}"]
        if d.differential:
            lines += ["", "Differential:", ""] + [f"- {_t(i.label)}: {i.probability:.2f}" for i in d.differential]
    lines += ["", "## Findings", ""]
    if report.findings:
        lines += ["| # | finding | confidence | status | agreement | box (original pixels) |", "|---|---|---|---|---|---|"]
        for n, f in enumerate(report.findings, start=1):
            agreement = f"{f.agreement:.2f}" if f.agreement is not None else "-"
            lines.append(f"| {n} | {_t(f.label)} | {f.confidence:.2f} | {f.status} | {agreement} | {box_text(f)} |")
    else:
        lines.append("No findings.")
    if report.reasoning:
        lines += ["", "## Reasoning", ""]
        for n, step in enumerate(report.reasoning, start=1):
            cites = f" [findings {', '.join(str(c + 1) for c in step.cites)}]" if step.cites else ""
            lines.append(f"{n}. {_t(step.text)}{cites}")
    if report.exemplars:
        lines += ["", "## Similar solved cases", ""]
        for e in report.exemplars:
            labels = _t(", ".join(e.labels) or "unlabelled")
            lines.append(f"- {_t(e.case_id)} (similarity {e.similarity:.2f}; {labels}; source {_t(e.source or '-')}, licence {_t(e.licence or '-')})")
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {_t(w)}" for w in report.warnings]
    p = report.provenance
    lines += [
        "",
        "## Provenance",
        "",
        f"- model: {p.model_id} ({p.model_family or '-'}; trained: {p.trained}; weights sha256: {p.weights_sha256 or '-'})",
        f"- backend: {p.backend}; graph: {p.graph} v{p.graph_version}; prompt: {p.prompt_version}; seed: {p.seed}",
        f"- evlf {p.evlf_version}; schema {report.schema_version}; created {p.created_at.isoformat()}",
        f"- model calls: {p.model_calls}; tokens in/out: {p.tokens_in}/{p.tokens_out}",
        "- timings (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in p.timings_ms.items()),
    ]
    return "\n".join(lines) + "\n"

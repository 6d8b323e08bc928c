"""A self-contained HTML report: the images with boxes and masks drawn on them, reasoning linked to findings.

Everything is inline (images as base64 PNG, SVG overlays, a few lines of CSS
and JS), so the file can be mailed or archived and opened offline.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import numpy as np

from evlf.core.types import Finding, LoadedImage, Report
from evlf.plugins.exporters.text import NOT_CLINICAL, box_text, model_banner

MAX_SIDE = 1024
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]

CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#222}
.banner{background:#b00020;color:#fff;padding:.8em 1em;font-weight:600;border-radius:4px;margin-bottom:.5em}
.banner.model{background:#8a5a00}
.figure{position:relative;display:inline-block;margin:.5em .5em .5em 0}
.figure img{display:block;max-width:100%}
.figure svg{position:absolute;left:0;top:0;width:100%;height:100%}
.figure .caption{font-size:.85em;color:#555}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.92em}
.finding.hl,.step.hl{background:#fff3b0}
rect.box{fill:none;stroke-width:3}rect.box.model{stroke-dasharray:8 5}
rect.box.hl{stroke-width:6}
.status-verified{color:#1b7f2a}.status-adjusted{color:#8a5a00}.status-unverified,.status-ungrounded{color:#b00020}
.cite{cursor:pointer;text-decoration:underline dotted}
"""

JS = """
function hl(n,on){document.querySelectorAll('[data-f="'+n+'"]').forEach(e=>e.classList.toggle('hl',on));}
document.querySelectorAll('[data-f]').forEach(e=>{e.addEventListener('mouseenter',()=>hl(e.dataset.f,true));
e.addEventListener('mouseleave',()=>hl(e.dataset.f,false));});
"""


def _png_data_url(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _display(image: LoadedImage) -> tuple[np.ndarray, float]:
    """The rendering, downscaled so the page stays small; returns it and the scale factor applied."""
    from PIL import Image

    h, w = image.rgb.shape[:2]
    factor = min(1.0, MAX_SIDE / max(h, w))
    if factor >= 1.0:
        return image.rgb, 1.0
    pil = Image.fromarray(image.rgb).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
    return np.asarray(pil), factor


def _mask_overlay(findings: list[tuple[int, Finding]], image_index: int, shape: tuple[int, int], factor: float) -> str | None:
    from PIL import Image

    h, w = shape
    overlay = np.zeros((h, w, 4), dtype=np.uint8)
    drawn = False
    for n, f in findings:
        if f.mask is None or f.mask.image_index != image_index:
            continue
        mask = f.mask.to_array()
        if factor < 1.0:
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 0
        color = COLORS[n % len(COLORS)]
        rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
        overlay[mask] = [*rgb, 90]
        drawn = True
    return _png_data_url_rgba(overlay) if drawn else None


def _png_data_url_rgba(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(image: LoadedImage, index: int, findings: list[Finding]) -> str:
    shown, factor = _display(image)
    h, w = shown.shape[:2]
    indexed = list(enumerate(findings))
    parts = [f'<div class="figure"><img src="{_png_data_url(shown)}" width="{w}" height="{h}" alt="image {index}">']
    mask_url = _mask_overlay(indexed, index, (h, w), factor)
    if mask_url:
        parts.append(f'<img src="{mask_url}" style="position:absolute;left:0;top:0" width="{w}" height="{h}" alt="masks">')
    svg = [f'<svg viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">']
    for n, f in indexed:
        color = COLORS[n % len(COLORS)]
        for b in f.boxes:
            if b.image_index != index:
                continue
            svg.append(
                f'<rect class="box {"model" if f.status != "verified" else ""}" data-f="{n}" x="{b.x0 * factor:.1f}" y="{b.y0 * factor:.1f}" '
                f'width="{b.width * factor:.1f}" height="{b.height * factor:.1f}" stroke="{color}"><title>{escape(f.label)} ({f.status})</title></rect>'
            )
            svg.append(
                f'<text x="{b.x0 * factor + 3:.1f}" y="{max(12.0, b.y0 * factor - 4):.1f}" fill="{color}" font-size="14" font-weight="bold">{n + 1}</text>'
            )
    svg.append("</svg>")
    parts.append("".join(svg))
    parts.append(f'<div class="caption">image {index}: {escape(image.path.name)} ({image.width}x{image.height})</div></div>')
    return "".join(parts)


def render_html(report: Report, images: list[Any] | None = None) -> str:
    images = list(images or [])
    body: list[str] = [f'<div class="banner">{escape(NOT_CLINICAL)}</div>']
    banner = model_banner(report)
    if banner:
        body.append(f'<div class="banner model">{escape(banner)}</div>')
    body.append(f"<h1>evlf report: {escape(report.study_id)}</h1>")
    body.append(f"<p>Specialties: {escape(', '.join(report.specialties) or '-')} · task: {escape(report.task)}</p>")
    if report.question:
        body.append(f"<p><b>Question:</b> {escape(report.question)}<br><b>Answer:</b> {escape(report.answer or '-')}</p>")
    for i, image in enumerate(images):
        body.append(_figure(image, i, report.findings))
    if report.diagnosis:
        d = report.diagnosis
        body.append("<h2>Diagnosis</h2>")
        body.append(f"<p><b>{escape(d.primary)}</b>{' (' + escape(d.code) + ')' if d.code else ''}, confidence {d.confidence:.2f}</p>")
        if d.differential:
            body.append("<ul>" + "".join(f"<li>{escape(i.label)}: {i.probability:.2f}</li>" for i in d.differential) + "</ul>")
    body.append("<h2>Findings</h2>")
    if report.findings:
        rows = "".join(
            f'<tr class="finding" data-f="{n}"><td style="color:{COLORS[n % len(COLORS)]}"><b>{n + 1}</b></td><td>{escape(f.label)}'
            f'{" (" + escape(f.code) + ")" if f.code else ""}</td><td>{f.confidence:.2f}</td>'
            f'<td class="status-{f.status}">{f.status}</td><td>{"-" if f.agreement is None else f"{f.agreement:.2f}"}</td>'
            f"<td>{escape(box_text(f))}</td><td>{escape(f.note or '')}</td></tr>"
            for n, f in enumerate(report.findings)
        )
        body.append(f"<table><tr><th>#</th><th>finding</th><th>confidence</th><th>status</th><th>agreement</th><th>box (original pixels)</th><th>note</th></tr>{rows}</table>")
    else:
        body.append("<p>No findings.</p>")
    if report.reasoning:
        body.append("<h2>Reasoning</h2><ol>")
        for step in report.reasoning:
            cites = " ".join(f'<span class="cite" data-f="{c}">[finding {c + 1}]</span>' for c in step.cites)
            body.append(f'<li class="step">{escape(step.text)} {cites}</li>')
        body.append("</ol>")
    if report.exemplars:
        body.append("<h2>Similar solved cases</h2><ul>")
        for e in report.exemplars:
            body.append(
                f"<li>{escape(e.case_id)}: similarity {e.similarity:.2f}; {escape(', '.join(e.labels) or 'unlabelled')}; "
                f"source {escape(e.source or '-')}; licence {escape(e.licence or '-')}</li>"
            )
        body.append("</ul>")
    if report.warnings:
        body.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{escape(w)}</li>" for w in report.warnings) + "</ul>")
    p = report.provenance
    prov = {
        "model": f"{p.model_id} ({p.model_family or '-'})",
        "trained": str(p.trained),
        "weights sha256": p.weights_sha256 or "-",
        "backend": p.backend,
        "graph": f"{p.graph} v{p.graph_version}",
        "prompt version": p.prompt_version or "-",
        "seed": str(p.seed),
        "model calls": str(p.model_calls),
        "tokens in / out": f"{p.tokens_in} / {p.tokens_out}",
        "timings (ms)": ", ".join(f"{k} {v:.1f}" for k, v in p.timings_ms.items()),
        "plugins": ", ".join(f"{k} {v}" for k, v in sorted(p.plugin_versions.items())),
        "evlf / schema": f"{p.evlf_version} / {report.schema_version}",
        "created": p.created_at.isoformat(),
    }
    body.append("<h2>Provenance</h2><table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in prov.items()) + "</table>")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>evlf report {escape(report.study_id)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>{JS}</script></body></html>\n"
    )

"""A self-contained HTML report: the images with boxes and masks drawn on them, reasoning linked to findings.

Everything is inline (images as base64 PNG, SVG overlays, a few lines of CSS
and JS), so the file can be mailed or archived and opened offline. The page
is the jinja2 templates in `templates/` (report.html.jinja, figure.html.jinja
for one image with its boxes, report.css, report.js); this module only
prepares the numbers they show.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from evlf.core.pixels import png_data_url
from evlf.core.types import Finding, LoadedImage, Report
from evlf.plugins.exporters.text import NOT_CLINICAL, box_text, model_banner

MAX_SIDE = 1024
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("evlf.plugins.exporters", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def _display(image: LoadedImage) -> tuple[np.ndarray, float]:
    """The rendering, downscaled so the page stays small; returns it and the scale factor applied."""
    from PIL import Image

    h, w = image.rgb.shape[:2]
    factor = min(1.0, MAX_SIDE / max(h, w))
    if factor >= 1.0:
        return image.rgb, 1.0
    pil = Image.fromarray(image.rgb).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
    return np.asarray(pil), factor


def _mask_overlay(findings: list[Finding], image_index: int, shape: tuple[int, int], factor: float) -> str | None:
    from PIL import Image

    h, w = shape
    overlay = np.zeros((h, w, 4), dtype=np.uint8)
    drawn = False
    for n, f in enumerate(findings):
        if f.mask is None or f.mask.image_index != image_index:
            continue
        mask = f.mask.to_array()
        if factor < 1.0:
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 0
        color = COLORS[n % len(COLORS)]
        overlay[mask] = [*(int(color[i : i + 2], 16) for i in (1, 3, 5)), 90]
        drawn = True
    return png_data_url(overlay, optimize=True) if drawn else None


def _figure(image: LoadedImage, index: int, findings: list[Finding]) -> dict[str, Any]:
    """One image as the figure template draws it: the picture, the mask overlay, each box scaled to the display."""
    shown, factor = _display(image)
    h, w = shown.shape[:2]
    boxes = [
        {
            "n": n,
            "model": f.status != "verified",
            "x": b.x0 * factor,
            "y": b.y0 * factor,
            "width": b.width * factor,
            "height": b.height * factor,
            "tx": b.x0 * factor + 3,
            "ty": max(12.0, b.y0 * factor - 4),
            "color": COLORS[n % len(COLORS)],
            "label": f.label,
            "status": f.status,
        }
        for n, f in enumerate(findings)
        for b in f.boxes
        if b.image_index == index
    ]
    return {
        "url": png_data_url(shown, optimize=True),
        "mask_url": _mask_overlay(findings, index, (h, w), factor),
        "w": w,
        "h": h,
        "index": index,
        "boxes": boxes,
        "name": image.path.name,
        "width": image.width,
        "height": image.height,
    }


def _finding_rows(findings: list[Finding]) -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "color": COLORS[n % len(COLORS)],
            "label": f.label,
            "code": f.code,
            "confidence": f.confidence,
            "status": f.status,
            "agreement": "-" if f.agreement is None else f"{f.agreement:.2f}",
            "box": box_text(f),
            "note": f.note or "",
        }
        for n, f in enumerate(findings)
    ]


def _provenance(report: Report) -> dict[str, str]:
    p = report.provenance
    return {
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


def render_html(report: Report, images: list[Any] | None = None) -> str:
    return _environment().get_template("report.html.jinja").render(
        report=report,
        not_clinical=NOT_CLINICAL,
        banner=model_banner(report),
        figures=[_figure(image, i, report.findings) for i, image in enumerate(images or [])],
        findings=_finding_rows(report.findings),
        provenance=_provenance(report),
    )

"""How a Report is answered: the `format` form field -> a response body and its media type.

Kept to two small functions so that new formats (any registered exporter)
slot in here alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from evlf.core.types import Report

FORMATS = ("json", "html", "markdown")


def check_format(fmt: str) -> None:
    """422 before any work is done when the format is unknown."""
    if fmt not in FORMATS:
        raise HTTPException(422, f"format must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, not {fmt[:40]!r}")


def render(report: Report, fmt: str, load_images: Callable[[], list[Any]], scrub: Callable[[str], str]) -> Response:
    """The response for `report`; `scrub` removes server paths from whatever text an exporter wrote."""
    report = Report.model_validate_json(scrub(report.model_dump_json()))
    if fmt == "json":
        return JSONResponse(report.model_dump(mode="json"))
    from evlf.core.plugins import get_host

    exporter = get_host().registries.exporters.get(fmt)
    if fmt == "html":
        return HTMLResponse(scrub(exporter.render(report, load_images())))
    return PlainTextResponse(scrub(exporter.render(report, [])), media_type="text/markdown")


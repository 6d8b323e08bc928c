"""How a Report is answered: the `format` form field -> a response body and its media type.

Any registered exporter is a format (`GET /v1/exporters` lists them). The
exporter sees the report as the run made it, source files included (the
DICOM exporters re-read them); whatever text it writes is scrubbed of server
paths before it leaves.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response

from evlf.core.exporter import ExportOptions, export_report
from evlf.core.types import Report


def check_format(fmt: str) -> None:
    """422 before any work is done when no exporter has that name."""
    from evlf.core.plugins import get_host

    exporters = get_host().registries.exporters
    if fmt != "json" and fmt not in exporters:
        raise HTTPException(422, f"format must be a registered exporter ({', '.join(exporters.names())}), not {fmt[:40]!r}")


def export_options(fields: dict[str, str]) -> ExportOptions:
    """The exporter options the form carries: a FHIR subject reference, and whether patient identity may leave."""
    allow = fields.get("allow_patient_identity", "").strip().lower() in ("1", "true", "yes", "on")
    return ExportOptions(subject=fields.get("subject") or None, allow_patient_identity=allow)


def render(report: Report, fmt: str, options: ExportOptions, scrub: Callable[[str], str]) -> Response:
    """The response for `report`; `scrub` removes server paths from whatever text an exporter wrote."""
    from evlf.core.plugins import get_host

    if fmt == "json":
        return JSONResponse(Report.model_validate_json(scrub(report.model_dump_json())).model_dump(mode="json"))
    exporter = get_host().registries.exporters.get(fmt)
    content = export_report(report, fmt, options=options)
    if isinstance(content, str):
        content = scrub(content)
    return Response(content, media_type=exporter.media_type)

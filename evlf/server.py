"""HTTP API (FastAPI) for clinical software: upload a study, get a typed, versioned Report.

`evlf serve` runs it with uvicorn. One Pipeline per graph is kept for the
server's life, so the model loads once; bad input is a 4xx with a one-line
`detail`, never a traceback. (No `from __future__ import annotations` here:
FastAPI resolves the endpoint annotations at runtime.)
"""

import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import Response

from evlf import __version__
from evlf.agents import defaults
from evlf.agents.context import Context
from evlf.core.errors import ConfigError, EvlfError, InputError
from evlf.core.exporter import ExportOptions, export_report
from evlf.core.types import SCHEMA_VERSION, Study, report_json_schema


def create_app(context: Context | None = None, upload_dir: Path | None = None) -> FastAPI:
    from evlf.agents.pipeline import Pipeline
    from evlf.core.plugins import get_host

    ctx = context or Context()
    uploads = upload_dir or Path(tempfile.mkdtemp(prefix="evlf-uploads-"))
    pipelines: dict[str, Pipeline] = {}
    app = FastAPI(title="evlf", version=__version__, description="Medical images to a reasoned, grounded report. Not for clinical use.")

    def pipeline(graph: str) -> Pipeline:
        if graph not in pipelines:
            pipelines[graph] = Pipeline(graph, ctx)
        return pipelines[graph]

    pipeline(defaults.GRAPH)  # a configuration that cannot run fails at startup (ConfigError), not on the first request

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "schema_version": SCHEMA_VERSION, "backend": ctx.backend}

    @app.get("/v1/schema/report")
    def schema() -> dict[str, Any]:
        return report_json_schema()

    @app.get("/v1/graphs")
    def graphs() -> list[dict[str, str]]:
        return [{"name": e.name, "version": e.obj.version, "description": e.obj.description} for e in get_host().registries.graphs.entries()]

    @app.get("/v1/specialties")
    def specialties() -> list[dict[str, Any]]:
        return [
            {"name": e.name, "plugin": e.plugin, "modalities": list(e.obj.modalities), "labels": [lab.name for lab in e.obj.labels]}
            for e in get_host().registries.specialties.entries()
        ]

    @app.get("/v1/exporters")
    def exporters_list() -> list[dict[str, str]]:
        return [{"name": e.name, "suffix": e.obj.suffix, "media_type": e.obj.media_type} for e in get_host().registries.exporters.entries()]

    @app.post("/v1/diagnose", response_model=None)
    async def diagnose(
        files: list[UploadFile] = File(...),
        graph: str = Form(defaults.GRAPH),
        specialty: str | None = Form(None),
        question: str | None = Form(None),
        task: str | None = Form(None),
        modality: str | None = Form(None),
        study_id: str | None = Form(None),
        format: str = Form("json"),
        subject: str | None = Form(None),
        allow_patient_identity: bool = Form(False),
    ) -> Any:
        exporters = get_host().registries.exporters
        if format not in exporters:
            raise HTTPException(422, f"format must be a registered exporter ({', '.join(exporters.names())}), not {format!r}")
        folder = Path(tempfile.mkdtemp(dir=uploads))
        paths = []
        for n, upload in enumerate(files):
            name = Path(upload.filename or f"image-{n}").name or f"image-{n}"
            target = folder / f"{n:02d}-{name}"
            target.write_bytes(await upload.read())
            paths.append(target)
        kwargs: dict[str, Any] = {
            "task": task or ("vqa" if question else "diagnosis"),
            "question": question,
            "specialty": specialty,
            "metadata": {"modality": modality} if modality else {},
        }
        if study_id:
            kwargs["id"] = study_id
        try:
            study = Study.from_paths(paths, **kwargs)
            report = await pipeline(graph).arun(study)
        except (InputError, ConfigError) as exc:
            raise HTTPException(422, str(exc).replace(str(folder) + "/", "")) from None
        except ValueError as exc:
            raise HTTPException(422, " ".join(str(exc).split())) from None
        except EvlfError as exc:
            raise HTTPException(500, str(exc)) from None
        if format == "json":
            return report.model_dump(mode="json")
        options = ExportOptions(subject=subject, allow_patient_identity=allow_patient_identity)
        try:
            content = export_report(report, format, options=options)
        except InputError as exc:
            raise HTTPException(422, str(exc).replace(str(folder) + "/", "")) from None
        return Response(content, media_type=exporters.get(format).media_type)

    return app

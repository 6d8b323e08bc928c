"""HTTP API (FastAPI) for clinical software: upload a study, get a typed, versioned Report.

`evlf serve` runs it with uvicorn. One Pipeline per graph is built once and
shared by every request (see runner.py); uploads live in a private folder only
while their request runs; bad input is a 4xx with a one-line `detail`, never a
traceback, and no response carries a server path or an uploaded filename. (No
`from __future__ import annotations` here: FastAPI resolves the endpoint
annotations at runtime.)
"""

import asyncio
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from evlf import __version__
from evlf.agents import defaults
from evlf.agents.context import Context
from evlf.core.errors import ConfigError, EvlfError, InputError
from evlf.core.types import SCHEMA_VERSION, Report, Study, report_json_schema
from evlf.server import formats, uploads
from evlf.server.auth import RateLimiter, check_token, client_key
from evlf.server.runner import Cancelled, GraphRunner
from evlf.server.settings import ServerSettings



class Runners:
    """The shared Pipeline (and its runner) of each graph, built on first use; the default one at startup."""

    def __init__(self, ctx: Context, settings: ServerSettings, backend: Any = None) -> None:
        from evlf.agents.resources import build_backend, check_config

        if backend is None:
            check_config(ctx)  # a configuration that cannot run: a ConfigError saying what to pass
        # the model loads now, once, shared by every graph: a bad model stops the start, not the first request
        self.ctx, self.settings, self.backend = ctx, settings, backend or build_backend(ctx)
        self._runners: dict[str, GraphRunner] = {}
        self._lock = threading.Lock()

    def get(self, graph: str) -> GraphRunner:
        from evlf.agents.pipeline import Pipeline

        with self._lock:
            if graph not in self._runners:
                pipeline = Pipeline(graph, self.ctx, backend=self.backend, audit=self.settings.audit_path() or False, audit_entry="server")
                self._runners[graph] = GraphRunner(pipeline, self.settings.max_batch, self.settings.batch_window_s)
            return self._runners[graph]

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.close(timeout_s=5.0)


def create_app(
    context: Context | None = None,
    upload_dir: Path | None = None,
    settings: ServerSettings | None = None,
    backend: Any = None,
) -> FastAPI:
    """The app; `upload_dir` is the parent of its private upload folder, `backend` an optional Backend instance."""
    settings = settings or ServerSettings(upload_parent=upload_dir)
    ctx = context or Context()
    runners = Runners(ctx, settings, backend)
    runners.get(defaults.GRAPH)  # a bad configuration fails here, at startup
    root = uploads.private_root(upload_dir or settings.upload_parent)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_burst)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runners.close()
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(
        title="evlf", version=__version__, lifespan=lifespan,
        description="Medical images to a reasoned, grounded report. Not for clinical use. See docs/server.md.",
    )
    app.state.settings, app.state.runners, app.state.upload_root = settings, runners, root

    def guard(request: Request) -> None:
        check_token(request, settings)

    def limited(request: Request) -> None:
        check_token(request, settings)
        limiter.check(client_key(request))

    _catalogue(app, guard)

    @app.post("/v1/diagnose", dependencies=[Depends(limited)], openapi_extra=uploads.OPENAPI_BODY)
    async def diagnose(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_request_bytes:
            raise HTTPException(413, f"the request is larger than {settings.max_request_bytes} bytes")
        upload = uploads.Upload(Path(tempfile.mkdtemp(dir=root)))
        try:
            await _receive(request, upload, settings)
            return await _diagnose(request, upload, runners, settings)
        finally:
            upload.remove()

    return app


def _catalogue(app: FastAPI, guard: Any) -> None:
    """The read-only endpoints: health (open to all), the Report schema, graphs and specialties."""
    deps = [Depends(guard)]

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "schema_version": SCHEMA_VERSION}

    @app.get("/v1/schema/report", dependencies=deps)
    def schema() -> dict[str, Any]:
        return report_json_schema()

    @app.get("/v1/graphs", dependencies=deps)
    def graphs() -> list[dict[str, str]]:
        from evlf.core.plugins import get_host

        return [{"name": e.name, "version": e.obj.version, "description": e.obj.description} for e in get_host().registries.graphs.entries()]

    @app.get("/v1/exporters", dependencies=deps)
    def exporters() -> list[dict[str, str]]:
        from evlf.core.plugins import get_host

        return [{"name": e.name, "suffix": e.obj.suffix, "media_type": e.obj.media_type} for e in get_host().registries.exporters.entries()]

    @app.get("/v1/specialties", dependencies=deps)
    def specialties() -> list[dict[str, Any]]:
        from evlf.core.plugins import get_host

        return [
            {"name": e.name, "plugin": e.plugin, "modalities": list(e.obj.modalities), "labels": [lab.name for lab in e.obj.labels]}
            for e in get_host().registries.specialties.entries()
        ]


async def _receive(request: Request, upload: uploads.Upload, settings: ServerSettings) -> None:
    try:
        await uploads.receive(request.stream(), request.headers.get("content-type", ""), upload, settings)
    except uploads.UploadRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None
    except ClientDisconnect:  # nobody to answer; the folder goes in the caller's `finally`
        raise HTTPException(400, "the client disconnected during the upload") from None


def _study(upload: uploads.Upload) -> Study:
    f = upload.fields
    metadata = {"modality": f["modality"]} if f.get("modality") else {}
    task = f.get("task") or ("vqa" if f.get("question") else "diagnosis")
    kwargs = {"question": f.get("question") or None, "specialty": f.get("specialty") or None}
    # an id of our own: unique among concurrent requests (run_many keys on it), the client's is put back after
    return Study.from_paths(upload.files, id=f"req-{uuid.uuid4().hex[:12]}", task=task, metadata=metadata, **kwargs)


async def _diagnose(request: Request, upload: uploads.Upload, runners: Runners, settings: ServerSettings) -> Response:
    fmt = upload.fields.get("format", "json")
    formats.check_format(fmt)
    try:
        runner = runners.get(upload.fields.get("graph") or defaults.GRAPH)
        study = _study(upload)
        report = await _run_until_gone(request, runner, study, settings)
        if upload.fields.get("study_id"):
            report = report.model_copy(update={"study_id": upload.fields["study_id"]})
        return await run_in_threadpool(formats.render, report, fmt, formats.export_options(upload.fields), upload.scrub)
    except (InputError, ConfigError) as exc:
        raise HTTPException(422, upload.scrub(str(exc))) from None
    except ValueError as exc:
        raise HTTPException(422, upload.scrub(" ".join(str(exc).split()))) from None
    except Cancelled as exc:
        raise HTTPException(503, str(exc)) from None
    except EvlfError as exc:
        raise HTTPException(500, upload.scrub(str(exc))) from None


async def _run_until_gone(request: Request, runner: GraphRunner, study: Study, settings: ServerSettings) -> Report:
    """The report, or the work cancelled when the client disconnects, the request times out or the server stops."""
    cancelled = threading.Event()
    work = asyncio.ensure_future(runner.run(study, cancelled))
    try:
        deadline = asyncio.get_running_loop().time() + settings.request_timeout_s
        while not work.done():
            await asyncio.wait({work}, timeout=0.1)
            if not work.done() and await request.is_disconnected():
                cancelled.set()
                raise Cancelled("the client went away")
            if asyncio.get_running_loop().time() > deadline:
                cancelled.set()
                raise HTTPException(504, f"no report within {settings.request_timeout_s:g} s")
        return work.result()
    finally:
        cancelled.set()  # a no-op once the work is done; stops it otherwise (client gone, server stopping)
        work.cancel()

"""Writing audit records for Pipeline runs: which inputs, which configuration, which model calls, which report.

`Auditor` wraps the run's backend in a RecordingBackend and, when a study's
report is done, appends one chained record to the AuditLog. Files appear as
hashes; paths only with `include_paths=True`. Images are never copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evlf import __version__
from evlf.agents.context import Context
from evlf.agents.resources import Resources
from evlf.core.audit import AuditLog, AuditRecord, InputFile, RecordingBackend, RunConfig, report_fingerprint
from evlf.core.audit.record import EntryPoint, redact_report, redact_study
from evlf.core.backends.base import Backend
from evlf.core.hashing import sha256_file
from evlf.core.plugins import get_host
from evlf.core.types import Report, Study


def input_files(study: Study, include_paths: bool) -> list[InputFile]:
    files = []
    for i, ref in enumerate(study.images, start=1):
        path = Path(ref.path)
        try:
            digest, size = sha256_file(path), path.stat().st_size
        except OSError:
            digest, size = "unreadable", 0
        files.append(InputFile(index=i, sha256=digest, size_bytes=size, frame=ref.frame, path=str(path) if include_paths else None))
    return files


class Auditor:
    def __init__(self, log: AuditLog | str | Path, entry_point: EntryPoint = "api", *, include_paths: bool = False) -> None:
        self.log = log if isinstance(log, AuditLog) else AuditLog(log)
        self.entry_point: EntryPoint = entry_point
        self.include_paths = include_paths
        self._recorders: dict[int, RecordingBackend] = {}

    def wrap(self, backend: Backend) -> RecordingBackend:
        """One recorder per backend instance, so studies sharing a model share its recorder."""
        if isinstance(backend, RecordingBackend):
            return backend
        return self._recorders.setdefault(id(backend), RecordingBackend(backend))

    def config(self, graph: str, graph_version: str | None, settings: Context, res: Resources) -> RunConfig:
        backend = res.get_backend()
        inner = backend.inner if isinstance(backend, RecordingBackend) else backend
        manifest = getattr(res.opened_store, "manifest", None)
        refiner = res.refiner
        return RunConfig(
            evlf_version=__version__,
            graph=graph,
            graph_version=graph_version,
            context=settings.model_dump(mode="json"),
            plugins=get_host().plugin_versions(),
            backend=inner.name,
            model=inner.identity.model_dump(mode="json"),
            refiner=getattr(refiner, "name", settings.refiner),
            refiner_weights_sha256=getattr(refiner, "weights_sha256", None),
            case_store_checksum=getattr(manifest, "checksum", None),
        )

    def write(self, study: Study, report: Report, config: RunConfig, res: Resources, *, replay_of: str | None = None) -> AuditRecord:
        backend = res.get_backend()
        calls = backend.take(study.id) if isinstance(backend, RecordingBackend) else []
        record = AuditRecord(
            entry_point=self.entry_point,
            config=config,
            inputs=input_files(study, self.include_paths),
            study=redact_study(study, self.include_paths),
            calls=calls,
            report=redact_report(report, self.include_paths),
            report_sha256=report_fingerprint(report),
            replay_of=replay_of,
        )
        return self.log.append(record)


def as_auditor(audit: Auditor | AuditLog | str | Path | bool | None, entry_point: EntryPoint) -> Auditor | None:
    """The Pipeline's `audit=` argument, else $EVLF_AUDIT, as an Auditor (None: no audit; `audit=False`: none whatever the environment says)."""
    if audit is False:
        return None
    if audit is True:
        from evlf.core.audit.log import default_audit_path

        return Auditor(default_audit_path(), entry_point)
    if isinstance(audit, Auditor):
        return audit
    if audit is None:
        from evlf.core.audit.log import audit_path_from_env

        path = audit_path_from_env()
        return Auditor(path, entry_point) if path is not None else None
    return Auditor(audit, entry_point)


def settings_dict(record: AuditRecord) -> dict[str, Any]:
    """The recorded Context, as Pipeline keywords."""
    return dict(record.config.context)

"""The audit trail: what exactly produced a report, kept so it can be checked and replayed.

`record` holds the record types, `log` the append-only hash-chained store,
`calls` the backend wrappers that record model calls and play them back.
Nothing here imports a model library; the Pipeline and the CLI build on it.
"""

from evlf.core.audit.calls import PlaybackBackend, RecordingBackend
from evlf.core.audit.log import AuditLog, ChainProblem
from evlf.core.audit.record import AuditRecord, CallRecord, InputFile, RunConfig, report_fingerprint

__all__ = [
    "AuditLog",
    "AuditRecord",
    "CallRecord",
    "ChainProblem",
    "InputFile",
    "PlaybackBackend",
    "RecordingBackend",
    "RunConfig",
    "report_fingerprint",
]

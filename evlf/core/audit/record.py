"""What one audit record holds: the inputs by hash, the resolved configuration, every model call, the report.

Patient data stays out by default: input files appear as hashes and sizes,
image paths as `image-N`, unless the user asks for paths (`include_paths`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evlf.core.hashing import canonical_json, sha256_text
from evlf.core.backends.base import Generation
from evlf.core.types import Report, Study

EntryPoint = Literal["api", "cli", "server", "batch", "eval", "replay"]
GENESIS = "0" * 64  # the previous hash of the first record


class InputFile(BaseModel):
    index: int
    sha256: str
    size_bytes: int
    frame: int | None = None
    path: str | None = None  # only when the user allows paths in the audit trail


class RunConfig(BaseModel):
    """The configuration a run resolved to: enough to build the same pipeline again."""

    model_config = ConfigDict(extra="allow")

    evlf_version: str
    graph: str
    graph_version: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    plugins: dict[str, str] = Field(default_factory=dict)
    backend: str
    model: dict[str, Any] = Field(default_factory=dict)  # the backend's ModelIdentity
    refiner: str | None = None
    refiner_weights_sha256: str | None = None
    case_store_checksum: str | None = None


class CallRecord(BaseModel):
    """One model call: the exact request (images by hash) and what came back."""

    request_id: str | None = None
    node: str = "reason"
    key: str  # evlf.core.audit.requests.request_key: the request and the model identity
    request: dict[str, Any]
    generation: Generation


class AuditRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    seq: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    entry_point: EntryPoint = "api"
    prev_hash: str = GENESIS
    hash: str = ""
    config: RunConfig
    inputs: list[InputFile]
    study: dict[str, Any]
    calls: list[CallRecord] = Field(default_factory=list)
    report: dict[str, Any]
    report_sha256: str
    replay_of: str | None = None

    def body_hash(self) -> str:
        """The hash that chains this record: everything but `id` and `hash` themselves."""
        body = self.model_dump(mode="json", exclude={"id", "hash"})
        return sha256_text(canonical_json(body))


def fingerprint_view(report: Report) -> dict[str, Any]:
    """The report without what changes from run to run on the same inputs (timings, clock, file paths)."""
    data = report.model_dump(mode="json")
    prov = data["provenance"]
    prov.pop("timings_ms", None)
    prov.pop("created_at", None)
    prov.pop("audit_id", None)
    for image in data.get("images", []):
        image.pop("path", None)
    return data


def report_fingerprint(report: Report) -> str:
    """SHA-256 of the report as a replay must reproduce it."""
    return sha256_text(canonical_json(fingerprint_view(report)))


def redact_study(study: Study, include_paths: bool) -> dict[str, Any]:
    data = study.model_dump(mode="json")
    if not include_paths:
        for i, image in enumerate(data["images"], start=1):
            image["path"] = f"image-{i}{Path(image['path']).suffix.lower()}"
    return data


def redact_report(report: Report, include_paths: bool) -> dict[str, Any]:
    data = report.model_dump(mode="json")
    if not include_paths:
        for i, image in enumerate(data.get("images", []), start=1):
            image["path"] = f"image-{i}{Path(image['path']).suffix.lower()}"
    return data

"""The server's limits and switches, in one model: the CLI, the app and the docs read their defaults here."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from evlf.core.errors import ConfigError

MiB = 1024 * 1024


class ServerSettings(BaseModel):
    """What `evlf serve` enforces on every request (see docs/server.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    token: str | None = Field(None, min_length=16)  # `Authorization: Bearer <token>`; required off loopback
    max_question_chars: int = Field(2000, ge=1)
    max_field_chars: int = Field(200, ge=1)  # every other form field (graph, specialty, study_id, ...)
    max_files: int = Field(16, ge=1)
    max_file_bytes: int = Field(64 * MiB, ge=1)
    max_request_bytes: int = Field(128 * MiB, ge=1)
    rate_limit_per_minute: int = Field(120, ge=0)  # per client (token or address); 0 turns it off
    rate_burst: int = Field(20, ge=1)
    request_timeout_s: float = Field(300.0, gt=0)
    max_batch: int = Field(16, ge=1)  # studies that share one round of the Pipeline
    batch_window_s: float = Field(0.25, ge=0)  # under load, how long a round waits for as many requests as the server held during the last one
    shutdown_grace_s: float = Field(10.0, ge=0)
    upload_parent: Path | None = None  # where the private upload folder is made; None = the system temp dir
    audit: Path | None = None  # the audit trail; None = $EVLF_AUDIT, else the user data folder's audit.jsonl
    audit_enabled: bool = True  # the server audits every report unless told not to (--no-audit)

    def audit_path(self) -> Path | None:
        from evlf.core.audit.log import default_audit_path

        if not self.audit_enabled:
            return None
        return self.audit or default_audit_path()

    def check_exposure(self) -> None:
        """Refuse to serve beyond this machine without a token."""
        if self.token is None and not is_loopback(self.host):
            raise ConfigError(
                f"--host {self.host} is reachable from other machines: set an API token with --token or EVLF_API_TOKEN"
                " (clients then send `Authorization: Bearer <token>`), or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname may resolve anywhere

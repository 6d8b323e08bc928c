"""`evlf serve`: the HTTP API, on loopback unless given a token (docs/server.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from evlf.core.errors import ConfigError

if TYPE_CHECKING:
    from evlf.server.settings import ServerSettings

# The limits' defaults live in evlf.server.settings.ServerSettings; an option left out (None) keeps that default.


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --token."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    backend: str | None = typer.Option(None, "--backend", "-b", help="Model backend (default: the demo model; tiny only when asked for)."),
    model: str | None = typer.Option(None, "--model"),
    endpoint: str | None = typer.Option(None, "--endpoint"),
    context_file: Path | None = typer.Option(None, "--context-file", help="JSON file with Context settings."),
    token: str | None = typer.Option(None, "--token", envvar="EVLF_API_TOKEN", help="API token clients send as `Authorization: Bearer <token>` (16+ characters)."),
    max_question_chars: int | None = typer.Option(None, "--max-question-chars", min=1),
    max_files: int | None = typer.Option(None, "--max-files", min=1),
    max_file_bytes: int | None = typer.Option(None, "--max-file-bytes", min=1),
    max_request_bytes: int | None = typer.Option(None, "--max-request-bytes", min=1),
    rate_limit: int | None = typer.Option(None, "--rate-limit", min=0, help="Requests a minute per client to /v1/diagnose (0: no limit)."),
    upload_dir: Path | None = typer.Option(None, "--upload-dir", help="Parent of the private upload folder (default: the system temp dir)."),
    audit: Path | None = typer.Option(None, "--audit", help="The audit trail every report is recorded in (default: $EVLF_AUDIT, else the user data folder's audit.jsonl)."),
    no_audit: bool = typer.Option(False, "--no-audit", help="Do not keep an audit trail."),
) -> None:
    """Serve POST /v1/diagnose (multipart images in the field `files` -> Report JSON, HTML or Markdown) and friends."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the server needs the `server` extra: pip install 'evlf[server]'") from None
    from evlf.server.settings import ServerSettings

    limits = {
        "max_question_chars": max_question_chars,
        "max_files": max_files,
        "max_file_bytes": max_file_bytes,
        "max_request_bytes": max_request_bytes,
        "rate_limit_per_minute": rate_limit,
    }
    given = {k: v for k, v in limits.items() if v is not None}
    if token is not None and len(token) < 16:
        raise ConfigError("--token / EVLF_API_TOKEN must be at least 16 characters")
    settings = ServerSettings(host=host, port=port, token=token, upload_parent=upload_dir, audit=audit, audit_enabled=not no_audit, **given)
    settings.check_exposure()  # before any model loads
    app = _app(settings, context_file, {"backend": backend, "model": model, "endpoint": endpoint})
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=int(settings.shutdown_grace_s))


def _app(settings: ServerSettings, context_file: Path | None, overrides: dict[str, str | None]) -> Any:
    from evlf.agents.context import Context
    from evlf.server import create_app

    ctx = Context.from_file(context_file).model_dump() if context_file else {}
    ctx.update({k: v for k, v in overrides.items() if v})
    return create_app(Context.build(ctx), settings=settings)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

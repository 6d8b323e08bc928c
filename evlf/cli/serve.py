"""`evlf serve`: the HTTP API on a local port."""

from __future__ import annotations

from pathlib import Path

import typer

from evlf.core.errors import ConfigError


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    backend: str | None = typer.Option(None, "--backend", "-b", help="Model backend (default: the demo model; tiny only when asked for)."),
    model: str | None = typer.Option(None, "--model"),
    endpoint: str | None = typer.Option(None, "--endpoint"),
    context_file: Path | None = typer.Option(None, "--context-file", help="JSON file with Context settings."),
) -> None:
    """Serve POST /v1/diagnose (multipart images -> Report JSON, HTML or Markdown) and friends."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the server needs the `server` extra: pip install 'evlf[server]'") from None
    from evlf.agents.context import Context
    from evlf.server import create_app

    settings = Context.from_file(context_file).model_dump() if context_file else {}
    settings.update({k: v for k, v in {"backend": backend, "model": model, "endpoint": endpoint}.items() if v})
    uvicorn.run(create_app(Context.build(settings)), host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

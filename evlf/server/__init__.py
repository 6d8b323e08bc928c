"""The HTTP API: `create_app()` builds it, `evlf serve` runs it (docs/server.md)."""

from evlf.server.app import create_app
from evlf.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

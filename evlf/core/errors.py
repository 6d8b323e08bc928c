"""Error types whose message is fit to show a user in one line."""

from __future__ import annotations

from pathlib import Path


class EvlfError(Exception):
    """Base of every error evlf raises on purpose."""


class InputError(EvlfError):
    """Bad input from the user: a file, a dataset line, an option. CLI exit code 2."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class ConfigError(EvlfError):
    """A setting that cannot work (missing weights path, unknown backend). CLI exit code 2."""


class PluginError(EvlfError):
    """A plugin that fails to load or collides with another one."""


class BackendError(EvlfError):
    """A model backend that cannot answer (server down, load failure)."""


class ParseError(EvlfError):
    """Model output that does not parse into the EVLF answer; keeps the raw text."""

    def __init__(self, problem: str, raw: str) -> None:
        self.problem = problem
        self.raw = raw
        super().__init__(problem)

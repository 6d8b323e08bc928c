"""The evlf plugin hooks (pluggy project "evlf").

Registration hooks receive a `register` callback and call it once per object
they contribute (the llm/hatch pattern); each hook's docstring says which part
of evlf calls it, and docs/plugins.md documents each under its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from evlf.core.types import CheckIssue, LoadedImage, Report, Study

PROJECT = "evlf"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_specialties(register: Callable[[Any], None]) -> None:
    """Register `Specialty` instances. Called once when the registries load; the triage node routes among them."""


@hookspec
def register_backends(register: Callable[[Any], None]) -> None:
    """Register model backend classes (each with a unique `name`). Called when the registries load; the reason node builds one from the Context."""


@hookspec
def register_refiners(register: Callable[[Any], None]) -> None:
    """Register box refiner classes (each with a unique `name`). Called when the registries load; the refine node uses one."""


@hookspec
def register_embedders(register: Callable[[Any], None]) -> None:
    """Register image embedder classes (each with a unique `name`). Called when the registries load; the retrieve node and `evlf cases` use one."""


@hookspec
def register_graphs(register: Callable[[Any], None]) -> None:
    """Register `GraphSpec`s (name, version, builder). Called when the registries load; `Pipeline` and `evlf diagnose --graph` pick one."""


@hookspec
def register_exporters(register: Callable[[Any], None]) -> None:
    """Register report exporters (name, suffix, render). Called when the registries load; the CLI and server write reports with them."""


@hookspec
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    """Check a draft report and return the issues found (empty when none). Called by the verify node; every plugin's issues are collected."""
    return []


@hookspec(firstresult=True)
def select_specialties(study: Study, images: list[LoadedImage], scores: dict[str, float]) -> list[str] | None:
    """Override routing: return the specialty names to run, or None to keep the score-based choice. Called by the triage node; the first non-None answer wins."""

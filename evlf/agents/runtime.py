"""The runtime context every node is given (LangGraph `context_schema`): the settings and the run's resources.

As in LangGraph's react-agent template, heavy things reach a node through
`runtime.context`, never through globals or state: `runtime.context.settings`
is the plain Context, `runtime.context.branch(study, name)` the specialist's
resources (specialty, options with the backend's box format, loaded and
preprocessed images, backend, refiner, case store), resolved once per branch.
Nothing here is checkpointed: a resumed run rebuilds it from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from evlf.agents.context import Context
from evlf.agents.request import specialty_options
from evlf.agents.resources import Resources
from evlf.core.backends.base import Backend
from evlf.core.geometry import BoxConvention
from evlf.core.plugins import get_host
from evlf.core.refine import Refiner
from evlf.core.specialty import Specialty, SpecialtyOptions
from evlf.core.types import LoadedImage, Study


@dataclass
class Branch:
    """What one specialist branch works with, each part resolved on first use and then kept."""

    study: Study
    specialty: Specialty
    resources: Resources

    @cached_property
    def backend(self) -> Backend:
        return self.resources.get_backend()

    @cached_property
    def convention(self) -> BoxConvention:
        return self.backend.identity.box_convention

    @cached_property
    def options(self) -> SpecialtyOptions:
        return specialty_options(self.specialty, self.convention)

    @cached_property
    def images(self) -> list[LoadedImage]:
        """The study's images as decoded (what boxes, checks and the refiner refer to)."""
        return self.resources.load_images(self.study.images)

    @cached_property
    def model_images(self) -> list[LoadedImage]:
        """The images after the specialty's preprocessing (what the model sees)."""
        return self.specialty.preprocess(self.images, self.options)

    @property
    def refiner(self) -> Refiner:
        return self.resources.get_refiner()

    @property
    def store(self) -> Any | None:
        return self.resources.get_store()


@dataclass(frozen=True)
class RunContext:
    """`runtime.context` in every node of evlf's graphs."""

    settings: Context
    resources: Resources

    def images(self, study: Study) -> list[LoadedImage]:
        return self.resources.load_images(study.images)

    def branch(self, study: Study, specialty: str) -> Branch:
        key = (study.id, specialty)
        with self.resources.lock:
            found = self.resources.branches.get(key)
            if found is None or found.study != study:
                found = Branch(study, get_host().registries.specialties.get(specialty), self.resources)
                self.resources.branches[key] = found
            return found

    def forget(self, study: Study) -> None:
        """Drop the branches of a finished study (run_many shares one Resources across studies)."""
        with self.resources.lock:
            for key in [k for k in self.resources.branches if k[0] == study.id]:
                del self.resources.branches[key]

"""Plugin loading and the registries the hooks fill.

Entry points (group "evlf") load first, then the built-ins named in
DEFAULT_PLUGINS, each exactly like a third party's plugin. EVLF_LOAD_PLUGINS
(comma-separated allow-list of plugin names) and EVLF_BLOCK_PLUGINS (deny-list)
control what loads. A plugin that fails to import is recorded in
`load_failures` with its name; it never takes the CLI down.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from evlf.core import hookspecs
from evlf.core.errors import ConfigError, PluginError

#: Built-in plugins, by module name. Core names them only as strings.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "evlf.plugins.dermatology",
    "evlf.plugins.hepatology",
    "evlf.plugins.ophthalmology",
    "evlf.plugins.pathology",
    "evlf.plugins.pulmonology",
    "evlf.plugins.radiology",
    "evlf.plugins.backends.transformers_backend",
    "evlf.plugins.backends.openai_backend",
    "evlf.plugins.backends.tiny",
    "evlf.plugins.refiners",
    "evlf.plugins.embedders",
    "evlf.plugins.exporters",
    "evlf.plugins.exporters.dicom_sr",
    "evlf.plugins.exporters.dicom_seg",
    "evlf.plugins.exporters.fhir",
    "evlf.plugins.backends.demo",
    "evlf.agents.graphs",
)

T = TypeVar("T")


@dataclass
class Registered(Generic[T]):
    name: str
    obj: T
    plugin: str


class Registry(Generic[T]):
    """Named objects contributed by plugins; a second object under a taken name is an error naming both plugins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Registered[T]] = {}

    def add(self, obj: T, plugin: str, name: str | None = None) -> None:
        key = name or getattr(obj, "name", None)
        if not key or not isinstance(key, str):
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} without a name")
        if key in self._items:
            other = self._items[key].plugin
            raise PluginError(f"{self.kind} {key!r} is registered by both plugin {other!r} and plugin {plugin!r}")
        self._items[key] = Registered(key, obj, plugin)

    def get(self, name: str) -> T:
        try:
            return self._items[name].obj
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def plugin_of(self, name: str) -> str:
        self.get(name)
        return self._items[name].plugin

    def names(self) -> list[str]:
        return sorted(self._items)

    def entries(self) -> list[Registered[T]]:
        return [self._items[k] for k in sorted(self._items)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return (self._items[k].obj for k in sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


REGISTRATION_HOOKS: dict[str, str] = {
    "specialties": "register_specialties",
    "backends": "register_backends",
    "refiners": "register_refiners",
    "embedders": "register_embedders",
    "graphs": "register_graphs",
    "exporters": "register_exporters",
}


@dataclass
class Registries:
    specialties: Registry[Any] = field(default_factory=lambda: Registry("specialty"))
    backends: Registry[Any] = field(default_factory=lambda: Registry("backend"))
    refiners: Registry[Any] = field(default_factory=lambda: Registry("refiner"))
    embedders: Registry[Any] = field(default_factory=lambda: Registry("embedder"))
    graphs: Registry[Any] = field(default_factory=lambda: Registry("graph"))
    exporters: Registry[Any] = field(default_factory=lambda: Registry("exporter"))


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    registers: dict[str, list[str]]
    builtin: bool


def _calling_plugin(impls: list[Any]) -> str:
    """The plugin whose hook implementation is calling `register`: the nearest frame running one of `impls`.

    pluggy calls every implementation in one hook call, so the callback finds
    its caller on the stack (a plugin may register from a helper it calls).
    """
    frame = sys._getframe(2)
    while frame is not None:
        this = frame.f_locals.get("self")
        for impl in impls:
            fn = impl.function
            if getattr(fn, "__code__", None) is frame.f_code and getattr(fn, "__self__", this) is this:
                return str(impl.plugin_name)
        frame = frame.f_back
    raise PluginError("register() was called outside a registration hook")


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _builtin_aliases(module: str) -> set[str]:
    """A built-in answers to its module name and its last part ("evlf.plugins.dermatology" -> "dermatology")."""
    return {module, module.rsplit(".", 1)[-1]}


def _allowed(aliases: set[str]) -> bool:
    """Whether EVLF_LOAD_PLUGINS / EVLF_BLOCK_PLUGINS let a plugin known by `aliases` load."""
    allow = _env_names("EVLF_LOAD_PLUGINS")
    block = _env_names("EVLF_BLOCK_PLUGINS") or set()
    if allow is not None and not (aliases & allow):
        return False
    return not (aliases & block)


class PluginHost:
    """A pluggy manager plus the registries it fills; one per process (see `get_host`)."""

    def __init__(self, *, load_entry_points: bool = True, load_defaults: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.load_failures: dict[str, str] = {}
        self.skipped: list[str] = []  # names EVLF_LOAD_PLUGINS / EVLF_BLOCK_PLUGINS kept out
        self.versions: dict[str, str] = {}
        self.builtin: set[str] = set()
        if load_entry_points:
            self._load_entry_points()
        if load_defaults:
            for module in DEFAULT_PLUGINS:
                self._load_module(module, builtin=True)
        self._registries: Registries | None = None

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            if not _allowed({ep.name, ep.module}):  # its entry-point name or its module name
                self.skipped.append(ep.name)
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken third-party plugin must not take evlf down
                self.load_failures[ep.name] = f"{type(exc).__name__}: {exc}"
                continue
            dist = getattr(ep, "dist", None)
            self.versions[ep.name] = dist.version if dist is not None else "unknown"

    def _load_module(self, module: str, builtin: bool) -> None:
        if not _allowed(_builtin_aliases(module)):
            self.skipped.append(module)
            return
        if self.pm.has_plugin(module):
            return
        try:
            plugin = importlib.import_module(module)
            self.pm.register(plugin, name=module)
        except Exception as exc:
            self.load_failures[module] = f"{type(exc).__name__}: {exc}"
            return
        from evlf import __version__

        self.versions[module] = getattr(plugin, "__version__", __version__)
        if builtin:
            self.builtin.add(module)

    def register(self, plugin: Any, name: str | None = None, version: str = "0") -> str:
        """Register an in-process plugin object (tests, notebooks); registries are rebuilt."""
        key = self.pm.register(plugin, name=name)
        if key is None:
            raise PluginError(f"plugin {name!r} is blocked or already registered")
        self.versions[key] = version
        self._registries = None
        return key

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.versions.pop(name, None)
        self._registries = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registries(self) -> Registries:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def _collect(self) -> Registries:
        """Fill the registries by calling each registration hook once through pluggy (ordering, wrappers, tracing apply)."""
        regs = Registries()
        for kind, hook_name in REGISTRATION_HOOKS.items():
            registry: Registry[Any] = getattr(regs, kind)
            caller = getattr(self.pm.hook, hook_name)
            impls = caller.get_hookimpls()

            def register(obj: Any, name: str | None = None, _registry: Registry[Any] = registry, _impls: list[Any] = impls) -> None:
                _registry.add(obj, _calling_plugin(_impls), name)

            caller(register=register)
        return regs

    def plugin_infos(self) -> list[PluginInfo]:
        regs = self.registries
        infos = []
        for name, plugin in sorted(self.pm.list_name_plugin()):
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            registers = {
                kind: [e.name for e in getattr(regs, kind).entries() if e.plugin == name] for kind in REGISTRATION_HOOKS
            }
            infos.append(
                PluginInfo(
                    name=name,
                    version=self.versions.get(name),
                    hooks=hooks,
                    registers={k: v for k, v in registers.items() if v},
                    builtin=name in self.builtin,
                )
            )
        return infos

    def plugin_versions(self) -> dict[str, str]:
        return {name: self.versions.get(name, "unknown") for name, _ in self.pm.list_name_plugin()}


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset_host() -> None:
    """Forget the process-wide host (after changing EVLF_* variables or installed plugins)."""
    global _HOST
    _HOST = None


def registries() -> Registries:
    return get_host().registries

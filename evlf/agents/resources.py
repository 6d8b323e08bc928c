"""What nodes use but state must not hold: the backend, refiner, case store and decoded images.

A Pipeline builds one `Resources` per run (shared by the studies of
`run_many`) and hands it to the graph in the runtime context
(evlf.agents.runtime). Models are cached per Context so repeated and resumed
runs reuse what is loaded.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlf.agents.batching import MicroBatcher
from evlf.agents.context import Context
from evlf.agents import defaults
from evlf.agents.defaults import default_store_path
from evlf.core.backends.base import Backend
from evlf.core.errors import ConfigError
from evlf.core.plugins import get_host
from evlf.core.refine import Refiner
from evlf.core.types import ImageRef, LoadedImage


def build_backend(ctx: Context) -> Backend:
    cls = get_host().registries.backends.get(ctx.backend)
    kwargs: dict[str, Any] = dict(ctx.backend_options)
    if ctx.model is not None:
        kwargs["model"] = ctx.model
    if ctx.endpoint is not None:
        kwargs["endpoint"] = ctx.endpoint
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"backend {ctx.backend!r} does not accept these options: {exc}") from None


def check_config(ctx: Context, *, backend: bool = True, refiner: bool = True) -> None:
    """Refuse a configuration that cannot run, before any node does, saying what to pass instead.

    `backend`/`refiner` False: the Pipeline was given an instance, so the named one is not checked.
    """
    registries = get_host().registries
    if refiner:
        registries.refiners.get(ctx.refiner)
    if not backend:
        return
    cls = registries.backends.get(ctx.backend)
    if ctx.backend == defaults.BACKEND:
        defaults.require_demo()
    params = inspect.signature(cls.__init__).parameters
    if "model" in params and params["model"].default is inspect.Parameter.empty and ctx.model is None:
        raise ConfigError(f"backend {ctx.backend!r} needs a model: pass model=DIR (CLI: --model DIR)")
    if ctx.model is not None and "endpoint" not in params and not Path(ctx.model).expanduser().is_dir():
        raise ConfigError(f"{ctx.model}: no such model directory (backend {ctx.backend!r} loads models from local folders)")


def build_refiner(ctx: Context) -> Refiner:
    cls = get_host().registries.refiners.get(ctx.refiner)
    try:
        return cls(**ctx.refiner_options)
    except TypeError as exc:
        raise ConfigError(f"refiner {ctx.refiner!r} does not accept these options: {exc}") from None


def open_store(ctx: Context) -> Any | None:
    """The case store for retrieval, or None when there is none (retrieval is then skipped with a warning)."""
    path = Path(ctx.case_store) if ctx.case_store else default_store_path()
    if not path.exists():
        if ctx.case_store:
            raise ConfigError(f"case store {path} does not exist (build one from labelled cases with `evlf cases add DATA.jsonl`)")
        return None
    from evlf.retrieval.store import CaseStore

    return CaseStore.open(path)


class ImageCache:
    """Bounded LRU of decoded images keyed by (path, frame, mtime)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int | None, float], LoadedImage] = OrderedDict()
        self.lock = threading.Lock()

    def load(self, ref: ImageRef) -> LoadedImage:
        from evlf.core.imaging import load_image

        path = Path(ref.path)
        mtime = path.stat().st_mtime if path.exists() else -1.0
        key = (str(path.resolve()), ref.frame, mtime)
        with self.lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        image = load_image(path, ref.frame)
        with self.lock:
            self._items[key] = image
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return image


@dataclass
class Resources:
    context: Context
    backend: Backend | None = None
    refiner: Refiner | None = None
    images: ImageCache = field(default_factory=ImageCache)
    batch_window_s: float = 0.05
    _store: Any = None
    _store_opened: bool = False
    _batcher: MicroBatcher | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    branches: dict[tuple[str, str], Any] = field(default_factory=dict)  # (study id, specialty) -> runtime.Branch
    wrap: Callable[[Backend], Backend] | None = None  # e.g. the audit trail's call recorder

    def get_backend(self) -> Backend:
        with self.lock:
            if self.backend is None:
                self.backend = _cached_backend(self.context)
            if self.wrap is not None:
                self.backend = self.wrap(self.backend)
            return self.backend

    @property
    def opened_store(self) -> Any | None:
        """The case store if a node opened it (None otherwise; never opens one)."""
        return self._store

    def get_refiner(self) -> Refiner:
        with self.lock:
            if self.refiner is None:
                self.refiner = _cached_refiner(self.context)
            return self.refiner

    def get_store(self) -> Any | None:
        with self.lock:
            if not self._store_opened:
                self._store = open_store(self.context)
                self._store_opened = True
            return self._store

    def batcher(self) -> MicroBatcher:
        backend = self.get_backend()
        with self.lock:
            if self._batcher is None:
                self._batcher = MicroBatcher(backend, window_s=self.batch_window_s)
            return self._batcher

    def load_images(self, refs: list[ImageRef]) -> list[LoadedImage]:
        return [self.images.load(r) for r in refs]


_BACKENDS: dict[str, Backend] = {}
_REFINERS: dict[str, Refiner] = {}
_CACHE_LOCK = threading.Lock()


def _model_key(ctx: Context) -> str:
    return repr((ctx.backend, ctx.model, ctx.endpoint, sorted(ctx.backend_options.items())))


def _cached_backend(ctx: Context) -> Backend:
    key = _model_key(ctx)
    with _CACHE_LOCK:
        if key not in _BACKENDS:
            _BACKENDS[key] = build_backend(ctx)
        return _BACKENDS[key]


def _cached_refiner(ctx: Context) -> Refiner:
    key = repr((ctx.refiner, sorted(ctx.refiner_options.items())))
    with _CACHE_LOCK:
        if key not in _REFINERS:
            _REFINERS[key] = build_refiner(ctx)
        return _REFINERS[key]

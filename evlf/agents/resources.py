"""What nodes use but state must not hold: the backend, refiner, case store and decoded images.

A Pipeline builds one `Resources` and installs it in a context variable for
the duration of a run; nodes call `current()`. Models are cached per Context so
repeated runs (and resumed runs) reuse what is loaded.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlf.agents.batching import MicroBatcher
from evlf.agents.context import Context
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


def build_refiner(ctx: Context) -> Refiner:
    cls = get_host().registries.refiners.get(ctx.refiner)
    try:
        return cls(**ctx.refiner_options)
    except TypeError as exc:
        raise ConfigError(f"refiner {ctx.refiner!r} does not accept these options: {exc}") from None


def default_store_path() -> Path:
    env = os.environ.get("EVLF_CASE_STORE")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("evlf")) / "cases"


def open_store(ctx: Context) -> Any | None:
    """The case store for retrieval, or None when there is none (retrieval is then skipped with a warning)."""
    path = Path(ctx.case_store) if ctx.case_store else default_store_path()
    if not path.exists():
        if ctx.case_store:
            raise ConfigError(f"case store {path} does not exist (build one with `evlf cases add` or `evlf cases starter`)")
        return None
    from evlf.retrieval.store import CaseStore

    return CaseStore.open(path)


class ImageCache:
    """Bounded LRU of decoded images keyed by (path, frame, mtime)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int | None, float], LoadedImage] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, ref: ImageRef) -> LoadedImage:
        from evlf.core.imaging import load_image

        path = Path(ref.path)
        mtime = path.stat().st_mtime if path.exists() else -1.0
        key = (str(path.resolve()), ref.frame, mtime)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        image = load_image(path, ref.frame)
        with self._lock:
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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get_backend(self) -> Backend:
        with self._lock:
            if self.backend is None:
                self.backend = _cached_backend(self.context)
            return self.backend

    def get_refiner(self) -> Refiner:
        with self._lock:
            if self.refiner is None:
                self.refiner = _cached_refiner(self.context)
            return self.refiner

    def get_store(self) -> Any | None:
        with self._lock:
            if not self._store_opened:
                self._store = open_store(self.context)
                self._store_opened = True
            return self._store

    def batcher(self) -> MicroBatcher:
        backend = self.get_backend()
        with self._lock:
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


_CURRENT: contextvars.ContextVar[Resources | None] = contextvars.ContextVar("evlf_resources", default=None)


def current(ctx: Context | None = None) -> Resources:
    """The resources of the run in progress (or fresh ones for `ctx` outside a Pipeline)."""
    res = _CURRENT.get()
    if res is None:
        if ctx is None:
            raise RuntimeError("no evlf resources installed: run graphs through evlf.Pipeline")
        res = Resources(context=ctx)
        _CURRENT.set(res)
    return res


def install(res: Resources) -> contextvars.Token[Resources | None]:
    return _CURRENT.set(res)


def uninstall(token: contextvars.Token[Resources | None]) -> None:
    _CURRENT.reset(token)

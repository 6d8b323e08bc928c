"""Per-node wall time, recorded into state so provenance can report it."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any


def timed(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add `timings_ms[name]` (summed over rounds) to what a node returns."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def stamp(result: Any, start: float) -> Any:
            if isinstance(result, dict):
                elapsed = (time.perf_counter() - start) * 1000.0
                timings = dict(result.get("timings_ms") or {})
                timings[name] = timings.get(name, 0.0) + elapsed
                result = {**result, "timings_ms": timings}
            return result

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_node(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                return stamp(await fn(*args, **kwargs), start)

            return async_node

        @functools.wraps(fn)
        def node(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            return stamp(fn(*args, **kwargs), start)

        return node

    return wrap

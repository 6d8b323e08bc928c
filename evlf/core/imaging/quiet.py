"""Library chatter kept off stderr, and library errors turned into one short line.

pydicom, Pillow and nibabel warn (and pydicom logs) on many malformed files;
evlf reports what matters as an InputError naming the file instead, so a
batch over a thousand files prints one line per bad file and nothing else.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Longest library detail kept in a user-facing message (raw file bytes can end up in exception text).
MAX_DETAIL = 160


#: Loggers of the readers: pydicom logs header problems, nibabel logs its header checks' fixes.
_LIBRARY_LOGGERS = ("pydicom", "nibabel", "PIL")


_LOCK = threading.Lock()
_depth = 0  # quiet() blocks open, in any thread: the loggers are raised on the first and restored after the last
_saved: list[tuple[logging.Logger, int]] = []


@contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and the readers' loggers (below CRITICAL) for the duration.

    Nested and concurrent blocks share one raise of the logger levels: `Logger.setLevel` clears
    the cache of every logger in the process (thousands once transformers is imported), and a
    DICOM header read opens a block per element, so levels are set only by the outermost block.
    """
    global _depth, _saved
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _LOCK:
            if _depth == 0:
                _saved = [(logger, logger.level) for logger in map(logging.getLogger, _LIBRARY_LOGGERS)]
                for logger, _ in _saved:
                    logger.setLevel(logging.CRITICAL + 1)
            _depth += 1
        try:
            yield
        finally:
            with _LOCK:
                _depth -= 1
                if _depth == 0:
                    for logger, level in _saved:
                        logger.setLevel(level)


def one_line(exc: BaseException, *, with_type: bool = True) -> str:
    """The exception as one printable line of bounded length, without raw bytes."""
    text = str(exc)
    if "b'" in text or 'b"' in text or "\\x" in text:
        text = "malformed value"  # a bytes repr from the file: the raw contents are not a message
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    if len(text) > MAX_DETAIL:
        text = text[: MAX_DETAIL - 1] + "…"
    if not with_type:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

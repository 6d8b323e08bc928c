"""Library chatter kept off stderr, and library errors turned into one short line.

pydicom, Pillow and nibabel warn (and pydicom logs) on many malformed files;
evlf reports what matters as an InputError naming the file instead, so a
batch over a thousand files prints one line per bad file and nothing else.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Longest library detail kept in a user-facing message (raw file bytes can end up in exception text).
MAX_DETAIL = 160


#: Loggers of the readers: pydicom logs header problems, nibabel logs its header checks' fixes.
_LIBRARY_LOGGERS = ("pydicom", "nibabel", "PIL")


@contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and the readers' loggers (below CRITICAL) for the duration."""
    loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
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

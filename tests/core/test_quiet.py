"""quiet(): the readers' loggers are silenced for the outermost block only and restored after it, nested or not."""

from __future__ import annotations

import logging
import warnings

from evlf.core.imaging.quiet import quiet


def test_nested_blocks_raise_the_levels_once_and_restore_them_after_the_last(monkeypatch) -> None:
    pydicom_log = logging.getLogger("pydicom")
    before = pydicom_log.level
    calls: list[int] = []
    original = logging.Logger.setLevel
    monkeypatch.setattr(logging.Logger, "setLevel", lambda self, level: calls.append(level) or original(self, level))
    with quiet():
        assert not pydicom_log.isEnabledFor(logging.ERROR) and not logging.getLogger("PIL.PngImagePlugin").isEnabledFor(logging.ERROR)
        for _ in range(5):
            with quiet(), warnings.catch_warnings(record=True) as seen:
                warnings.warn("inside")  # the inner block ignores warnings too
                assert not seen and not pydicom_log.isEnabledFor(logging.ERROR)
        assert not pydicom_log.isEnabledFor(logging.ERROR)
    assert len(calls) == 6  # three loggers raised once and restored once, not per inner block
    assert pydicom_log.level == before and pydicom_log.isEnabledFor(logging.CRITICAL)

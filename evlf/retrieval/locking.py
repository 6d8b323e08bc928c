"""A cross-process lock on one store folder: writers from several processes (two `evlf cases add` at once) take turns.

The lock file sits inside the store folder and is never deleted (deleting a lock file
another process is waiting on breaks the lock). Within one process an RLock keeps threads
apart as well, and the file lock is re-entrant, so a write that opens nested sections is fine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from evlf.core.errors import InputError
from evlf.retrieval.paths import LOCK_FILE

#: How long a writer waits for another process's write to finish before giving up.
LOCK_TIMEOUT_S = 300.0


class StoreLock:
    def __init__(self, root: Path, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = root / LOCK_FILE
        self._file = FileLock(str(self.path), timeout=timeout, thread_local=False)
        self._thread = threading.RLock()

    @property
    def threads(self) -> threading.RLock:  # type: ignore[valid-type]
        """The in-process part alone: what a search takes so no thread of ours changes the index under it."""
        return self._thread

    @contextmanager
    def held(self) -> Iterator[None]:
        """Exclusive access to the store's files, across threads and processes."""
        with self._thread:
            try:
                self._file.acquire()
            except Timeout:
                raise InputError(self.path, f"another process has held the case store lock for over {self._file.timeout:.0f} s") from None
            try:
                yield
            finally:
                self._file.release()

    @contextmanager
    def for_reading(self) -> Iterator[None]:
        """The lock where it can be taken; a store on a read-only filesystem is read without it (nobody can write there)."""
        try:
            self.path.touch(exist_ok=True)
        except OSError:
            with self._thread:
                yield
            return
        with self.held():
            yield

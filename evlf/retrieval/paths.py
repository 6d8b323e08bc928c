"""Where a case store lives: its default folder and the files inside it (one copy for every entry point)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the default store folder.
STORE_ENV = "EVLF_CASE_STORE"

DB_FILE = "cases.sqlite"
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
#: Taken by every writer (and briefly by every opener) so processes never interleave their writes.
LOCK_FILE = "store.lock"


def default_store_path() -> Path:
    """$EVLF_CASE_STORE (with ~ expanded), else the user's data directory (platformdirs) /cases."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("evlf")) / "cases"

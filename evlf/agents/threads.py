"""Checkpoint thread ids: the study's content, the graph and its version, and the run's configuration.

A run resumes only when all of them are unchanged: replacing an image at the
same path, or changing the backend, model or any setting, starts a new thread.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from evlf.agents.context import Context
from evlf.core.backends.base import Backend
from evlf.core.hashing import sha256_file
from evlf.core.types import Study


def file_digest(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return "unreadable"  # ingest reports the file itself


def thread_id(study: Study, graph: str, graph_version: str, settings: Context, backend: Backend | None) -> str:
    """`backend`: an instance given to the Pipeline, keyed by the model it serves (its identity)."""
    key = {
        "study": study.model_dump(mode="json"),
        "content": [file_digest(Path(ref.path)) for ref in study.images],
        "graph": [graph, graph_version],
        "context": settings.model_dump(mode="json"),
        "backend": backend.identity.model_dump(mode="json") if backend is not None else None,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{study.id}:{digest[:16]}"

"""Canonical forms of a model request: the same request always hashes the same.

Shared by the eval call cache (its key) and the audit trail (what was sent).
Images appear only as hashes, so neither stores pixels.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from evlf.core.backends.base import GenerationRequest, ModelIdentity


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of an image array with its dtype and shape."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def request_payload(request: GenerationRequest) -> dict[str, Any]:
    """Everything in a request that decides the reply (the request id names a call; it is left out)."""
    return {
        "system": request.system,
        "turns": [{"role": t.role, "text": t.text, "images": [image_digest(im) for im in t.images]} for t in request.turns],
        "schema": request.json_schema,
        "seed": request.seed,
        "temperature": request.temperature,
        "max_new_tokens": request.max_new_tokens,
    }


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_key(request: GenerationRequest, identity: ModelIdentity) -> str:
    """The key of one request to one model (the eval call cache's key)."""
    return sha256_text(canonical_json({"model": identity.model_dump(mode="json"), **request_payload(request)}))

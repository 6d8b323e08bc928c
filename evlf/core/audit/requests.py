"""Canonical forms of a model request: the same request always hashes the same.

Shared by the eval call cache (its key) and the audit trail (what was sent).
Images appear only as hashes, so neither stores pixels.
"""

from __future__ import annotations

from typing import Any

from evlf.core.backends.base import GenerationRequest, ModelIdentity
from evlf.core.hashing import array_digest as image_digest
from evlf.core.hashing import canonical_json, sha256_text


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


def request_key(request: GenerationRequest, identity: ModelIdentity) -> str:
    """The key of one request to one model (the eval call cache's key)."""
    return sha256_text(canonical_json({"model": identity.model_dump(mode="json"), **request_payload(request)}))

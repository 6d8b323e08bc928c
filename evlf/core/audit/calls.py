"""Backend wrappers for the audit trail: one records every call, the other plays recorded calls back.

`RecordingBackend` sits between the graph and the real backend and keeps each
request (images by hash) with its Generation, grouped by the study id that
starts every request id. `PlaybackBackend` answers from a record without any
model, so a replay isolates a change in evlf's own code from a change in the
model; it notes every request that differs from the recorded one.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from pydantic import BaseModel

from evlf.core.audit.record import CallRecord
from evlf.core.audit.requests import request_key, request_payload
from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity


def study_of(request_id: str | None) -> str | None:
    """The study id a request id starts with (`STUDY:specialty:round`)."""
    return request_id.split(":", 1)[0] if request_id else None


class RecordingBackend(Backend):
    name: ClassVar[str] = "recording"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # reports name the backend that answered, not the wrapper
        self._calls: list[CallRecord] = []
        self._lock = threading.Lock()

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        replies = self.inner.generate(requests)
        identity = self.inner.identity
        calls = [
            CallRecord(request_id=r.request_id, key=request_key(r, identity), request=request_payload(r), generation=g.model_copy(deep=True))
            for r, g in zip(requests, replies, strict=True)
        ]
        with self._lock:
            self._calls.extend(calls)
        return replies

    def take(self, study_id: str) -> list[CallRecord]:
        """Remove and return the calls made for one study, in the order they were made."""
        with self._lock:
            mine = [c for c in self._calls if study_of(c.request_id) == study_id]
            self._calls = [c for c in self._calls if study_of(c.request_id) != study_id]
        return mine

    def close(self) -> None:
        self.inner.close()


class CallDifference(BaseModel):
    """Where a replayed request parted from the recorded one."""

    call: int  # 0-based index among the replay's calls
    request_id: str | None
    node: str = "reason"
    fields: list[str]  # which parts of the request differ (system, turn N text, turn N images, schema, ...)


def request_differences(recorded: dict, new: dict) -> list[str]:
    fields = [k for k in ("system", "schema", "seed", "temperature", "max_new_tokens") if recorded.get(k) != new.get(k)]
    old_turns, new_turns = recorded.get("turns", []), new.get("turns", [])
    if len(old_turns) != len(new_turns):
        fields.append(f"number of turns ({len(old_turns)} recorded, {len(new_turns)} now)")
    for i, (a, b) in enumerate(zip(old_turns, new_turns, strict=False), start=1):
        for part in ("role", "text", "images"):
            if a.get(part) != b.get(part):
                fields.append(f"turn {i} {part}")
    return fields


class PlaybackBackend(Backend):
    """Answers each request with the recorded Generation of the same request id (or, failing that, the same position)."""

    name: ClassVar[str] = "playback"

    def __init__(self, calls: list[CallRecord], identity: ModelIdentity, backend_name: str = "playback") -> None:
        self.name = backend_name  # type: ignore[misc]  # the recorded backend's name, so the report matches
        self._calls = list(calls)
        self._identity = identity
        self._by_id = {c.request_id: c for c in calls if c.request_id}
        self._lock = threading.Lock()
        self.served = 0
        self.differences: list[CallDifference] = []

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def _recorded(self, request: GenerationRequest, index: int) -> CallRecord | None:
        if request.request_id in self._by_id:
            return self._by_id[request.request_id]
        return self._calls[index] if index < len(self._calls) else None

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out: list[Generation] = []
        for request in requests:
            with self._lock:
                index, self.served = self.served, self.served + 1
            payload = request_payload(request)
            recorded = self._recorded(request, index)
            if recorded is None:
                self.differences.append(CallDifference(call=index, request_id=request.request_id, fields=["no recorded call (the replay made more calls)"]))
                out.append(Generation(text="", error="no recorded answer for this call", model=self._identity))
                continue
            fields = request_differences(recorded.request, payload)
            if fields:
                self.differences.append(CallDifference(call=index, request_id=request.request_id, node=recorded.node, fields=fields))
            out.append(recorded.generation.model_copy(deep=True))
        return out

    def unused(self) -> int:
        """Recorded calls the replay never asked for."""
        return max(0, len(self._calls) - self.served)

"""The audit trail's store and call wrappers: chained records, tamper detection, record and play back."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from evlf.core.audit import AuditLog, AuditRecord, PlaybackBackend, RecordingBackend, RunConfig
from evlf.core.audit.requests import request_key
from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity, Turn

IDENTITY = ModelIdentity(name="echo", family="test")


class EchoBackend(Backend):
    """Answers with the request's last text: deterministic, no model."""

    name: ClassVar[str] = "echo"

    @property
    def identity(self) -> ModelIdentity:
        return IDENTITY

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        return [Generation(text=r.turns[-1].text.upper(), model=IDENTITY) for r in requests]


def record(n: int = 0) -> AuditRecord:
    return AuditRecord(
        config=RunConfig(evlf_version="0", graph="direct", backend="echo"),
        inputs=[],
        study={"id": f"s{n}"},
        report={"n": n},
        report_sha256=f"{n:064d}",
    )


def request(text: str, study: str = "s1", system: str = "sys") -> GenerationRequest:
    image = np.zeros((4, 4, 3), np.uint8)
    return GenerationRequest(system=system, turns=[Turn(role="user", text=text, images=[image])], request_id=f"{study}:radiology:0")


def test_records_chain_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    written = [log.append(record(i)) for i in range(3)]
    assert [r.seq for r in written] == [1, 2, 3]
    assert written[1].prev_hash == written[0].hash and written[2].prev_hash == written[1].hash
    assert log.verify() == []
    assert log.get(written[1].id[:8]).report == {"n": 1}


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_last", "swap"])
def test_tampering_is_detected(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(3):
        log.append(record(i))
    lines = path.read_text().splitlines()
    if tamper == "edit":
        data = json.loads(lines[1])
        data["report"] = {"n": 99}
        lines[1] = json.dumps(data)
    elif tamper == "delete_middle":
        del lines[1]
    elif tamper == "delete_last":
        del lines[2]
    else:
        lines[0], lines[1] = lines[1], lines[0]
    path.write_text("\n".join(lines) + "\n")
    assert log.verify(), f"{tamper} went unnoticed"


def _append_many(path: str, start: int) -> None:
    log = AuditLog(path)
    for i in range(start, start + 10):
        log.append(record(i))


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    log = AuditLog(path)
    assert len(list(log.records())) == 30
    assert log.verify() == []


def test_recording_then_playback_returns_the_same_generations() -> None:
    recorder = RecordingBackend(EchoBackend())
    replies = recorder.generate([request("a"), request("b", study="s2")])
    calls = recorder.take("s1")
    assert [c.generation.text for c in calls] == ["A"] and len(recorder.take("s2")) == 1
    assert calls[0].key == request_key(request("a"), IDENTITY)
    assert calls[0].request["turns"][0]["images"][0] != ""  # images by hash, not pixels

    playback = PlaybackBackend(calls, IDENTITY)
    again = playback.generate([request("a")])
    assert again[0].text == replies[0].text and playback.differences == []


def test_playback_names_what_changed_in_the_request() -> None:
    recorder = RecordingBackend(EchoBackend())
    recorder.generate([request("a")])
    playback = PlaybackBackend(recorder.take("s1"), IDENTITY)
    playback.generate([request("a", system="a new prompt template")])
    assert len(playback.differences) == 1
    diff = playback.differences[0]
    assert diff.node == "reason" and diff.fields == ["system"]

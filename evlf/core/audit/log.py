"""An append-only, hash-chained JSONL store of audit records, safe for several writers.

Each record holds the hash of the one before; a side file (`PATH.head`) holds
the count and the last hash, so a deleted, edited, reordered or truncated
record is found by `verify`. Appends take a cross-process lock (filelock).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from evlf.core.audit.record import GENESIS, AuditRecord
from evlf.core.errors import InputError


class ChainProblem(BaseModel):
    line: int
    message: str


class Head(BaseModel):
    count: int = 0
    last_hash: str = GENESIS


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._lock = FileLock(str(self.path) + ".lock")

    def _read_head(self) -> Head:
        if not self.head_path.is_file():
            return Head()
        try:
            return Head.model_validate_json(self.head_path.read_text(encoding="utf-8"))
        except ValidationError:
            raise InputError(self.head_path, "the audit head file is damaged (run `evlf audit verify`)") from None

    def append(self, record: AuditRecord) -> AuditRecord:
        """Chain `record` after the last one and write it; returns it with seq, prev_hash, hash and id set."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            head = self._read_head()
            record = record.model_copy(update={"seq": head.count + 1, "prev_hash": head.last_hash})
            digest = record.body_hash()
            record = record.model_copy(update={"hash": digest, "id": digest[:16]})
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (record.model_dump_json() + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp = self.head_path.with_name(self.head_path.name + ".tmp")
            tmp.write_text(Head(count=record.seq, last_hash=digest).model_dump_json(), encoding="utf-8")
            os.replace(tmp, self.head_path)
        return record

    def _lines(self) -> Iterator[tuple[int, str]]:
        if not self.path.is_file():
            raise InputError(self.path, "no such audit trail")
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    yield n, line

    def records(self) -> Iterator[AuditRecord]:
        for n, line in self._lines():
            try:
                yield AuditRecord.model_validate_json(line)
            except ValidationError:
                raise InputError(self.path, f"line {n} is not an audit record (run `evlf audit verify`)") from None

    def get(self, record_id: str) -> AuditRecord:
        """The record whose id starts with `record_id` (a unique prefix is enough)."""
        found = [r for r in self.records() if r.id.startswith(record_id)]
        if not found:
            raise InputError(self.path, f"no audit record {record_id!r}")
        if len(found) > 1:
            raise InputError(self.path, f"{record_id!r} matches {len(found)} records; give more of the id")
        return found[0]

    def verify(self) -> list[ChainProblem]:
        """Every break in the chain; empty when the trail is intact."""
        problems: list[ChainProblem] = []
        prev, count = GENESIS, 0
        for n, line in self._lines():
            try:
                record = AuditRecord.model_validate_json(line)
            except ValidationError:
                problems.append(ChainProblem(line=n, message="not a valid audit record"))
                continue
            count += 1
            if record.prev_hash != prev:
                problems.append(ChainProblem(line=n, message=f"record {record.id} does not follow the one before (a record was removed, inserted or reordered)"))
            if record.body_hash() != record.hash or record.id != record.hash[:16]:
                problems.append(ChainProblem(line=n, message=f"record {record.id} was changed after it was written"))
            if record.seq != count:
                problems.append(ChainProblem(line=n, message=f"record {record.id} has sequence {record.seq}, expected {count}"))
            prev = record.hash
        head = self._read_head()
        if head.count != count or head.last_hash != prev:
            problems.append(ChainProblem(line=0, message=f"the trail holds {count} records but its head says {head.count} (records were removed from the end or added without the log)"))
        return problems


AUDIT_ENV = "EVLF_AUDIT"  # a path: every run of the API, CLI, batch and eval is audited there


def default_audit_path() -> Path:
    """Where the server's audit trail goes unless told otherwise ($EVLF_AUDIT, else the user data folder)."""
    env = os.environ.get(AUDIT_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("evlf")) / "audit.jsonl"


def audit_path_from_env() -> Path | None:
    """$EVLF_AUDIT as a path, or None when it is unset (auditing off for the API and CLI)."""
    env = os.environ.get(AUDIT_ENV)
    return Path(env).expanduser() if env else None

"""SIGTERM: `evlf serve` stops promptly, answers what is in flight, and leaves no upload behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not come up")


@pytest.mark.slow
def test_sigterm_stops_the_server_and_removes_every_upload(tmp_path, bodies):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"backend": "tiny", "n_exemplars": 0, "max_new_tokens": 32}))
    port = _free_port()
    cmd = [sys.executable, "-m", "evlf", "serve", "--port", str(port), "--context-file", str(context), "--upload-dir", str(uploads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        answers: list = []

        def post() -> None:
            try:
                r = httpx.post(f"{url}/v1/diagnose", files={"files": ("a.png", bodies.png(), "image/png")}, data={"graph": "full", "specialty": "radiology"}, timeout=60)
                answers.append(r.status_code)
            except httpx.TransportError as exc:
                answers.append(type(exc).__name__)

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit status is -SIGTERM
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - start < 15
        log = proc.stderr.read() if proc.stderr else ""
        assert "Application shutdown complete" in log and "Traceback" not in log, log
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(answers) == 3 and all(a in (200, 503) for a in answers), answers
    assert [p for p in uploads.rglob("*")] == []

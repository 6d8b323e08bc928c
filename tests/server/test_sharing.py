"""One shared Pipeline: concurrent requests meet in one batched model call; a client that leaves stops its work."""

from __future__ import annotations

import threading
import time

import httpx


def _post(live, bodies, question: str, out: list, timeout: float = 60) -> threading.Thread:
    def go() -> None:
        try:
            with live.client(timeout=timeout) as c:
                out.append(c.post("/v1/diagnose", files={"files": ("a.png", bodies.png(), "image/png")}, data={"graph": "direct", "specialty": "radiology", "question": question}))
        except httpx.TimeoutException as exc:
            out.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def _hold(gated) -> None:
    gated.entered.clear()
    gated.gate.clear()


def test_concurrent_requests_share_one_batched_model_call(live, bodies, gated):
    _hold(gated)
    results: list = []
    first = _post(live, bodies, "first", results)
    assert gated.entered.wait(30)  # the first request is inside the model; the next three queue meanwhile
    before = len(gated.batches)
    others = [_post(live, bodies, f"other {n}", results) for n in range(3)]
    time.sleep(1.0)
    gated.gate.set()
    for t in [first, *others]:
        t.join(120)
    assert [r.status_code for r in results] == [200] * 4
    assert max(gated.batches[before:]) == 3  # the three queued studies went to the model in one call


def test_a_client_that_leaves_is_never_run(live, bodies, gated):
    _hold(gated)
    results: list = []
    blocker = _post(live, bodies, "blocker", results)
    assert gated.entered.wait(30)
    gone: list = []
    _post(live, bodies, "abandoned-question", gone, timeout=1.0).join(10)
    assert isinstance(gone[0], httpx.TimeoutException)
    time.sleep(0.5)  # the server notices the disconnect within its 0.1 s poll
    gated.gate.set()
    blocker.join(120)
    assert results[0].status_code == 200
    time.sleep(1.0)
    assert not any("abandoned-question" in text for text in gated.seen)

"""Done-when checks: a 200 KB question, a 200 MB upload and 100 files are each refused quickly
while the server keeps serving others, and no upload is left on disk."""

from __future__ import annotations

import socket
import threading
import time



def _diagnose_in_background(live, bodies, results: list) -> threading.Thread:
    def go() -> None:
        with live.client() as c:
            results.append(c.post("/v1/diagnose", files={"files": ("a.png", bodies.png(), "image/png")}, data={"graph": "direct", "specialty": "radiology"}))

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def _declared_only(live, bodies, length: int) -> bytes:
    """Send only the headers of a request declaring `length` bytes; the server's first answer line."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"POST /v1/diagnose HTTP/1.1\r\nHost: {host}\r\nContent-Type: {bodies.multipart}\r\nContent-Length: {length}\r\n\r\n"
        sock.sendall(head.encode())
        return sock.recv(4096)


def _leftovers(live) -> list:
    return [p for p in live.parent.rglob("*") if p.is_file()]


def test_a_200kb_question_is_refused_at_once_while_others_are_served(live, bodies):
    served: list = []
    other = _diagnose_in_background(live, bodies, served)
    start = time.monotonic()
    with live.client() as c:
        r = c.post("/v1/diagnose", files={"files": ("q.png", bodies.png(), "image/png")}, data={"question": "is it? " * 30_000})
    assert r.status_code == 422 and "question is longer than 2000 characters" in r.json()["detail"]
    assert time.monotonic() - start < 5
    other.join(120)
    assert served and served[0].status_code == 200, served[0].text
    assert _leftovers(live) == []


def test_a_200mb_upload_is_refused_while_streaming_and_when_declared(live, bodies):
    served: list = []
    other = _diagnose_in_background(live, bodies, served)
    start = time.monotonic()
    with live.client() as c:
        r = c.post("/v1/diagnose", content=bodies.streamed_upload(200 * 1024 * 1024), headers={"content-type": bodies.multipart})
        assert r.status_code == 413 and "upload 1 is larger than" in r.json()["detail"], r.text
    assert _declared_only(live, bodies, 200 << 20).startswith(b"HTTP/1.1 413")  # answered before a byte of the body
    assert time.monotonic() - start < 30
    other.join(120)
    assert served and served[0].status_code == 200, served[0].text
    assert _leftovers(live) == []


def test_100_files_are_refused_while_others_are_served(live, bodies):
    served: list = []
    other = _diagnose_in_background(live, bodies, served)
    image = bodies.png()
    start = time.monotonic()
    with live.client() as c:
        r = c.post("/v1/diagnose", files=[("files", (f"f{n}.png", image, "image/png")) for n in range(100)])
    assert r.status_code == 413 and "too many files: at most 16" in r.json()["detail"]
    assert time.monotonic() - start < 5
    other.join(120)
    assert served and served[0].status_code == 200, served[0].text
    assert _leftovers(live) == []


def test_the_upload_folder_is_private_and_empty_after_each_response(live, bodies):
    root = live.app.state.upload_root
    assert root.stat().st_mode & 0o777 == 0o700
    with live.client() as c:
        ok = c.post("/v1/diagnose", files={"files": ("a.png", bodies.png(1), "image/png")}, data={"graph": "direct", "specialty": "radiology"})
        bad = c.post("/v1/diagnose", files={"files": ("b.png", b"not an image", "image/png")}, data={"graph": "direct", "specialty": "radiology"})
        unknown = c.post("/v1/diagnose", files={"files": ("c.png", bodies.png(), "image/png")}, data={"colour": "red"})
    assert (ok.status_code, bad.status_code, unknown.status_code) == (200, 422, 422)
    assert "unknown form field 'colour'" in unknown.json()["detail"]
    assert list(root.iterdir()) == []


def test_a_client_gone_mid_upload_leaves_nothing(live, bodies):
    host, port = live.url.removeprefix("http://").split(":")
    part = next(bodies.streamed_upload(0))
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"POST /v1/diagnose HTTP/1.1\r\nHost: {host}\r\nContent-Type: {bodies.multipart}\r\nContent-Length: {10 << 20}\r\n\r\n"
        sock.sendall(head.encode() + part + bytes(1 << 20))
        time.sleep(0.5)  # the server has the first megabyte on disk
    deadline = time.monotonic() + 10
    while _leftovers(live) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(live) == []
    with live.client() as c:
        assert c.get("/healthz").status_code == 200

"""A live server on a free loopback port (uvicorn in a thread) and a backend the tests can hold at the door."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
import httpx  # noqa: E402
import uvicorn  # noqa: E402

from evlf.agents.context import Context  # noqa: E402
from evlf.core.backends.base import Backend  # noqa: E402
from evlf.core.plugins import get_host  # noqa: E402
from evlf.server import ServerSettings, create_app  # noqa: E402

BOUNDARY = "evlf-test-boundary"


def png_bytes(seed: int = 0) -> bytes:
    """A small grayscale radiograph-like image: a bright disc on a smooth gradient, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:128]
    img = 60 + xx * 0.8 + 120 * (((xx - 64) ** 2 + (yy - 48) ** 2) < 400) + rng.normal(0, 3, (96, 128))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def streamed_upload(total_bytes: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """One file part of `total_bytes` zeros, generated chunk by chunk."""
    yield (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.dcm\"\r\n"
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    block = bytes(chunk)
    for _ in range(total_bytes // chunk):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture(scope="session")
def bodies() -> SimpleNamespace:
    """Request bodies: `png(seed)`, `streamed_upload(n_bytes)` and the multipart content type they go with."""
    return SimpleNamespace(png=png_bytes, streamed_upload=streamed_upload, multipart=MULTIPART)


CTX = Context(backend="tiny", n_exemplars=0, max_new_tokens=32)


class GatedBackend(Backend):
    """The tiny backend, recording every batch; while `gate` is clear, `generate` waits (a slow model)."""

    name = "gated-tiny"

    def __init__(self) -> None:
        self.inner = get_host().registries.backends.get("tiny")()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.seen: list[str] = []

    @property
    def identity(self) -> Any:
        return self.inner.identity

    def generate(self, requests: list[Any]) -> list[Any]:
        self.batches.append(len(requests))
        self.seen.extend(repr(r) for r in requests)
        self.entered.set()
        self.gate.wait(30)
        return self.inner.generate(requests)


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _audit_trail(tmp_path_factory) -> Iterator[None]:
    """The server audits by default: keep its trail out of the user's data folder."""
    import os

    old = os.environ.get("EVLF_AUDIT")
    os.environ["EVLF_AUDIT"] = str(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    yield
    if old is None:
        os.environ.pop("EVLF_AUDIT", None)
    else:
        os.environ["EVLF_AUDIT"] = old


@pytest.fixture(scope="session")
def ctx() -> Context:
    return CTX


@pytest.fixture(scope="module")
def gated() -> GatedBackend:
    return GatedBackend()


@pytest.fixture(scope="module")
def live(tmp_path_factory, gated):
    parent = tmp_path_factory.mktemp("uploads")
    app = create_app(CTX, settings=ServerSettings(upload_parent=parent, rate_limit_per_minute=0), backend=gated)
    with LiveServer(app) as server:
        server.parent = parent
        yield server

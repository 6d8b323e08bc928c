"""The openai backend against real servers on 127.0.0.1.

`transformers serve` runs a tiny LLaVA directory (the real thing, end to end).
A small FastAPI app stands in where a real server cannot be made to misbehave
on purpose: slow, 5xx then recovering, 4xx, nonsense bodies, invalid JSON.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import GenerationRequest, Turn
from evlf.plugins.backends.openai_backend import OpenAIBackend
from evlf.core.errors import BackendError, ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


@pytest.fixture(scope="module")
def transformers_server(tiny_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    exe = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen([str(exe), "serve", str(tiny_dir("llava")), "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        try:
            wait_up(f"http://127.0.0.1:{port}/health", 120, proc)
        except RuntimeError as err:
            pytest.fail(f"transformers serve did not start: {err}\n{log.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/v1", str(tiny_dir("llava"))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def completion(content: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


GOOD = '<think>ok</think><answer>{"diagnosis": "pneumonia", "confidence": 0.9, "findings": [{"label": "opacity", "confidence": 0.8, "box": [0.1, 0.2, 0.5, 0.6]}]}</answer>'


@pytest.fixture(scope="module")
def fault_server():
    """A chat-completions server whose behaviour is chosen by the request's model name."""
    hits: Counter[str] = Counter()
    bodies: list[dict] = []
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        model = body["model"]
        hits[model] += 1
        bodies.append(body)
        if model == "slow":
            await __import__("asyncio").sleep(1.5)
            return completion(GOOD)
        if model == "flaky" and hits[model] <= 2:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if model == "always-500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if model == "bad-request":
            return JSONResponse({"error": {"message": "image too large"}}, status_code=400)
        if model == "nonsense":
            return PlainTextResponse("<html>hello</html>")
        if model == "invalid-json":
            return completion('<answer>{"diagnosis": "x", "confidence": </answer>')
        if model == "fix-on-repair" and hits[model] == 1:
            return completion("I think it is pneumonia.")
        return completion(GOOD)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_up(f"http://127.0.0.1:{port}/health", 30)
    yield f"http://127.0.0.1:{port}/v1", hits, bodies
    server.should_exit = True
    thread.join(timeout=10)


def request(image, schema=None, text="What is shown?"):
    return GenerationRequest(system="You are a radiologist.", turns=[Turn(role="user", text=text, images=[image(64, 48)])], max_new_tokens=24, json_schema=schema)


@pytest.mark.slow  # about 30 s: `transformers serve` imports and loads at start
def test_transformers_serve_tiny_llava(transformers_server, image):
    endpoint, model = transformers_server
    backend = OpenAIBackend(model, endpoint=endpoint, timeout=60, concurrency=2, repair=False)
    assert backend.identity.family == "llava"  # guessed from the model name
    out = backend.generate([request(image), request(image, text="Another?")])
    for gen in out:
        assert gen.text and gen.tokens_in > 0 and 0 < gen.tokens_out <= 24
        assert gen.image_sizes == [(64, 48)]
        assert (gen.answer is None) == (gen.error is not None)  # untrained noise rarely parses; either way it is typed


def test_schema_and_images_reach_the_server(fault_server, image):
    endpoint, hits, bodies = fault_server
    backend = OpenAIBackend("ok-model", endpoint=endpoint, family="qwen2_5_vl")
    gen = backend.generate([request(image, answer_json_schema(["pneumonia"]))])[0]
    assert gen.answer is not None and gen.answer.diagnosis == "pneumonia" and gen.think == "ok"
    assert (gen.tokens_in, gen.tokens_out) == (11, 7)
    assert gen.image_sizes == [(56, 56)]  # Qwen's resize rule for a 64x48 image
    body = next(b for b in bodies if b["model"] == "ok-model")
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["additionalProperties"] is False
    url = body["messages"][1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    from PIL import Image

    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (64, 48)


def test_retries_5xx_then_succeeds(fault_server, image):
    endpoint, hits, _ = fault_server
    gen = OpenAIBackend("flaky", endpoint=endpoint, max_retries=3, backoff=0.01).generate([request(image)])[0]
    assert gen.answer is not None and hits["flaky"] == 3


def test_persistent_5xx_is_a_backend_error(fault_server, image):
    endpoint, hits, _ = fault_server
    with pytest.raises(BackendError, match="server error 500 after 3 tries"):
        OpenAIBackend("always-500", endpoint=endpoint, max_retries=2, backoff=0.01).generate([request(image)])
    assert hits["always-500"] == 3


def test_4xx_is_not_retried(fault_server, image):
    endpoint, hits, _ = fault_server
    gen = OpenAIBackend("bad-request", endpoint=endpoint, max_retries=3, backoff=0.01).generate([request(image)])[0]
    assert hits["bad-request"] == 1
    assert gen.answer is None and "400" in gen.error and "image too large" in gen.error


def test_slow_server_times_out_after_retries(fault_server, image):
    endpoint, hits, _ = fault_server
    started = time.monotonic()
    with pytest.raises(BackendError, match="no answer within 0.3 s after 2 tries"):
        OpenAIBackend("slow", endpoint=endpoint, timeout=0.3, max_retries=1, backoff=0.01).generate([request(image)])
    assert hits["slow"] == 2 and time.monotonic() - started < 5


def test_server_down(image):
    endpoint = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match="cannot reach the server after 2 tries"):
        OpenAIBackend("m", endpoint=endpoint, max_retries=1, backoff=0.01).generate([request(image)])


def test_nonsense_body_is_a_backend_error(fault_server, image):
    endpoint, _, _ = fault_server
    with pytest.raises(BackendError, match="not a chat completion"):
        OpenAIBackend("nonsense", endpoint=endpoint, backoff=0.01).generate([request(image)])


def test_invalid_json_keeps_raw_text_after_one_repair(fault_server, image):
    endpoint, hits, _ = fault_server
    gen = OpenAIBackend("invalid-json", endpoint=endpoint).generate([request(image)])[0]
    assert gen.answer is None and gen.text.startswith("<answer>")
    assert "repair failed" in gen.error and hits["invalid-json"] == 2


def test_repair_turn_fixes_prose(fault_server, image):
    endpoint, hits, bodies = fault_server
    gen = OpenAIBackend("fix-on-repair", endpoint=endpoint).generate([request(image)])[0]
    assert gen.repaired and gen.answer is not None and hits["fix-on-repair"] == 2
    repair_body = [b for b in bodies if b["model"] == "fix-on-repair"][-1]
    assert repair_body["messages"][-2] == {"role": "assistant", "content": "I think it is pneumonia."}
    assert "could not be read" in repair_body["messages"][-1]["content"]


def test_needs_an_endpoint_or_key(monkeypatch):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "EVLF_OPENAI_BASE_URL", "EVLF_OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="endpoint"):
        OpenAIBackend("m")
    monkeypatch.setenv("EVLF_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert OpenAIBackend("m").endpoint == "http://127.0.0.1:9/v1"

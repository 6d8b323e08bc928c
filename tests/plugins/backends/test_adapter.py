"""The adapter layer both backends share: one message format per dialect, one repair path."""

from __future__ import annotations

import numpy as np

from evlf.core.backends.base import Generation, GenerationRequest, ModelIdentity, Turn
from evlf.plugins.backends.adapter import chat_messages, finish, generate_with_repair
from evlf.plugins.backends.openai_backend import chat_request_messages

IDENTITY = ModelIdentity(name="m", family="qwen2_vl")
GOOD = '<think>ok</think><answer>{"diagnosis": "normal", "confidence": 0.5, "differential": [], "findings": [], "answer": null}</answer>'


def request() -> GenerationRequest:
    pixel = np.zeros((2, 3, 3), dtype=np.uint8)
    return GenerationRequest(
        system="sys",
        turns=[Turn(role="user", text="ex", images=[pixel]), Turn(role="assistant", text="reply"), Turn(role="user", text="q", images=[pixel, pixel])],
    )


def test_local_dialect_always_uses_content_lists():
    messages = chat_messages(request(), lambda img: {"type": "image"}, plain_text=False)
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "sys"}]}
    assert messages[2] == {"role": "assistant", "content": [{"type": "text", "text": "reply"}]}
    assert [c["type"] for c in messages[3]["content"]] == ["image", "image", "text"]


def test_server_dialect_sends_plain_text_and_data_urls():
    messages = chat_request_messages(request())
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[2] == {"role": "assistant", "content": "reply"}
    urls = [c["image_url"]["url"] for c in messages[3]["content"] if c["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)


def test_repair_runs_once_for_the_failed_replies_only():
    calls: list[list[GenerationRequest]] = []

    def generate(requests: list[GenerationRequest]) -> list[Generation]:
        calls.append(requests)
        if len(calls) == 1:
            return [finish(GOOD, IDENTITY), finish("prose", IDENTITY)]
        return [finish("still prose", IDENTITY) for _ in requests]

    first, second = generate_with_repair([request(), request()], generate)
    assert len(calls) == 2 and len(calls[1]) == 1  # one repair pass, for the one bad reply
    assert calls[1][0].turns[-2].text == "prose" and calls[1][0].json_schema  # the bad reply, then the critique, under the schema
    assert first.answer is not None and not first.repaired
    assert second.answer is None and "repair failed" in (second.error or "")


def test_transformers_repair_leaves_the_backend_alone_while_it_runs(tiny_backend, monkeypatch):
    """The old repair flipped `self.repair` around a recursive call: a concurrent caller then got no repair."""
    seen: list[bool] = []

    def fake_batch(requests: list[GenerationRequest]) -> list[Generation]:
        seen.append(tiny_backend.repair)
        return [finish("prose", tiny_backend.identity) for _ in requests]

    monkeypatch.setattr(tiny_backend, "_generate_batch", fake_batch)
    out = tiny_backend.generate([request().model_copy(update={"turns": [Turn(role="user", text="q")]})])
    assert seen == [True, True]  # first pass and repair pass both ran with the setting untouched
    assert out[0].answer is None and "repair failed" in (out[0].error or "")

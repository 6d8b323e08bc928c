"""CachingBackend: what is part of the key, batching of misses, persistence across instances."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity, Turn
from evlf.eval.call_cache import CachingBackend


class CountingBackend(Backend):
    """Test double: echoes the request text and records every batch it is sent."""

    name: ClassVar[str] = "counting"

    def __init__(self, model: str = "m1", fail: bool = False) -> None:
        self.batches: list[int] = []
        self.model = model
        self.fail = fail

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(name=self.model, family="test", trained=False)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        self.batches.append(len(requests))
        if self.fail:
            return [Generation(text="", error="server down", model=self.identity) for _ in requests]
        return [Generation(text=f"reply to {r.turns[-1].text}", tokens_out=3, model=self.identity) for r in requests]


def req(text: str, image: np.ndarray | None = None, **kw: object) -> GenerationRequest:
    images = [image] if image is not None else []
    return GenerationRequest(turns=[Turn(role="user", text=text, images=images)], **kw)  # type: ignore[arg-type]


def test_only_misses_reach_the_backend_in_one_batch(tmp_path: Path) -> None:
    inner = CountingBackend()
    cache = CachingBackend(inner, tmp_path / "c.sqlite")
    img = np.zeros((4, 4, 3), np.uint8)
    first = cache.generate([req("a", img), req("b"), req("a", img)])
    assert [g.text for g in first] == ["reply to a", "reply to b", "reply to a"]
    assert inner.batches == [2]  # the duplicate was sent once
    second = cache.generate([req("b"), req("c"), req("a", img)])
    assert [g.text for g in second] == ["reply to b", "reply to c", "reply to a"]
    assert inner.batches == [2, 1]
    assert (cache.hits, cache.misses) == (3, 3)
    assert len(cache) == 3


def test_key_covers_images_settings_and_model(tmp_path: Path) -> None:
    inner = CountingBackend()
    cache = CachingBackend(inner, tmp_path / "c.sqlite")
    img = np.zeros((4, 4, 3), np.uint8)
    other = img.copy()
    other[0, 0, 0] = 1
    base = req("q", img)
    variants = [
        req("q", other),
        req("q", img, seed=1),
        req("q", img, temperature=0.7),
        req("q", img, max_new_tokens=10),
        req("q", img, json_schema={"type": "object"}),
        GenerationRequest(system="be brief", turns=base.turns),
    ]
    cache.generate([base])
    for v in variants:
        cache.generate([v])
    assert inner.batches == [1] * 7
    cache.generate([req("q", img, request_id="another id")])  # the request id is not part of the key
    assert inner.batches == [1] * 7
    other_model = CachingBackend(CountingBackend(model="m2"), tmp_path / "c.sqlite")
    other_model.generate([base])
    assert other_model.misses == 1


def test_cache_persists_and_failed_replies_are_retried(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    CachingBackend(CountingBackend(), path).generate([req("x")])
    again = CountingBackend()
    cached = CachingBackend(again, path).generate([req("x")])
    assert cached[0].text == "reply to x" and again.batches == []
    failing = CountingBackend(fail=True)
    cache = CachingBackend(failing, path)
    cache.generate([req("y")])
    cache.generate([req("y")])
    assert failing.batches == [1, 1]

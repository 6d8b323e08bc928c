"""The one adapter layer every backend shares: messages in, replies read, one repair turn.

outlines' shape: each backend formats the input for its provider and reads
its output through the same small functions, so a change to how a request is
worded or how a bad reply is repaired happens once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import Generation, GenerationRequest, ModelIdentity, Turn
from evlf.core.errors import ConfigError, ParseError
from evlf.core.output import parse_output, repair_prompt

REPAIR_MIN_TOKENS = 192

ImagePart = Callable[[np.ndarray], dict[str, Any]]


def reject_unknown(backend: str, kwargs: dict[str, Any]) -> None:
    """Unknown options are a typo or a wrong backend, never something to ignore quietly."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise ConfigError(f"backend {backend!r} does not take option(s): {names}")


def chat_messages(request: GenerationRequest, image_part: ImagePart, *, plain_text: bool) -> list[dict[str, Any]]:
    """The request as chat messages: system first, then each turn with its images before its text.

    `image_part` renders one image as a content item (a placeholder for a local
    chat template, a data URL for a server); with `plain_text`, a message
    without images carries its text as a plain string (what servers expect),
    otherwise always a list of content items (what processors expect).
    """
    messages: list[dict[str, Any]] = []
    if request.system:
        system: Any = request.system if plain_text else [{"type": "text", "text": request.system}]
        messages.append({"role": "system", "content": system})
    for turn in request.turns:
        if plain_text and (turn.role == "assistant" or not turn.images):
            messages.append({"role": turn.role, "content": turn.text})
            continue
        content = [image_part(img) for img in turn.images]
        content.append({"type": "text", "text": turn.text})
        messages.append({"role": turn.role, "content": content})
    return messages


def finish(
    text: str,
    identity: ModelIdentity,
    *,
    tokens_in: int = 0,
    tokens_out: int = 0,
    latency_ms: float = 0.0,
    image_sizes: list[tuple[int, int]] | None = None,
    error: str | None = None,
) -> Generation:
    """A Generation with the reply parsed; a parse failure becomes `error`, the raw text stays."""
    answer = None
    think = ""
    if error is None:
        try:
            parsed = parse_output(text)
            answer, think = parsed.answer, parsed.think
        except ParseError as err:
            error = err.problem
    return Generation(
        text=text,
        answer=answer,
        think=think,
        error=error,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_ms=latency_ms,
        model=identity,
        image_sizes=list(image_sizes or []),
    )


def repair_request(request: GenerationRequest, failed: Generation, schema: dict[str, Any] | None) -> GenerationRequest:
    """The single follow-up request: the same conversation, the bad reply, the parse error."""
    turns = [*request.turns, Turn(role="assistant", text=failed.text), Turn(role="user", text=repair_prompt(failed.error or "unreadable"))]
    budget = max(request.max_new_tokens, REPAIR_MIN_TOKENS)  # room for a whole answer, whatever the first budget was
    return request.model_copy(update={"turns": turns, "json_schema": request.json_schema or schema, "max_new_tokens": budget})


def merge_repair(first: Generation, second: Generation) -> Generation:
    """Keep the repaired reply when it parsed, else the first one with both errors."""
    tokens_in = first.tokens_in + second.tokens_in
    tokens_out = first.tokens_out + second.tokens_out
    latency = first.latency_ms + second.latency_ms
    if second.answer is not None:
        return second.model_copy(
            update={"repaired": True, "tokens_in": tokens_in, "tokens_out": tokens_out, "latency_ms": latency, "image_sizes": first.image_sizes}
        )
    error = f"{first.error}; repair failed: {second.error}"
    return first.model_copy(update={"error": error, "tokens_in": tokens_in, "tokens_out": tokens_out, "latency_ms": latency})


def generate_with_repair(
    requests: list[GenerationRequest],
    generate: Callable[[list[GenerationRequest]], list[Generation]],
    needs_repair: Callable[[Generation], bool] = lambda g: g.answer is None,
) -> list[Generation]:
    """Run `generate`, then one repair turn for every reply that `needs_repair`, batched, never repaired twice.

    Nothing on the backend is flipped while it runs, so concurrent callers
    (the micro-batcher's threads) each get their own single repair.
    """
    results = generate(requests)
    failed = [i for i, g in enumerate(results) if needs_repair(g)]
    if failed:
        schema = answer_json_schema()
        second = generate([repair_request(requests[i], results[i], schema) for i in failed])
        for i, gen in zip(failed, second, strict=True):
            results[i] = merge_repair(results[i], gen)
    return results

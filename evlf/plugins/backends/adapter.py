"""Pieces every backend shares: option checking, reply parsing, the repair turn."""

from __future__ import annotations

from typing import Any

from evlf.core.backends.base import Generation, GenerationRequest, ModelIdentity, Turn
from evlf.core.errors import ConfigError, ParseError
from evlf.core.output import parse_output, repair_prompt


REPAIR_MIN_TOKENS = 192


def reject_unknown(backend: str, kwargs: dict[str, Any]) -> None:
    """Unknown options are a typo or a wrong backend, never something to ignore quietly."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise ConfigError(f"backend {backend!r} does not take option(s): {names}")


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

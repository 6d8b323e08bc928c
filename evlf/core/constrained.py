"""Constrained decoding: generate the EVLF reply under a JSON Schema with llguidance.

Why llguidance: it is small (no dependencies, no triton), accepts both a JSON
Schema and a Lark grammar with `%json` (so the whole `<think>..</think>
<answer>{json}</answer>` shape is constrained, not only the JSON), and costs
well under a millisecond a token. It ships no transformers logits processor, so
`GrammarLogitsProcessor` below is that glue.

What made it reliable on untrained models (see DESIGN.md):
- closed objects (`additionalProperties: false`) so the decoder cannot invent keys;
- the tokenizer's marker tokens (chat markers, image pads) are banned, EOS aside;
- the think part is length-bounded, and ends before the closing phase below
  (with fewer than about 200 new tokens there is no room left for reasoning);
- near the end of the token budget the decoder prefers tokens that close the
  current string, array or object (or at least end a number), so a random model still finishes a valid
  reply inside `max_new_tokens` instead of being cut off mid-JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from evlf.core.errors import ConfigError

THINK_MAX_CHARS = 256
FINISH_MARGIN = 160  # tokens left at which the decoder starts closing what is open
MIN_CONSTRAINED_TOKENS = 128  # a minimal reply (every key, empty lists) fits, one byte a token
_CLOSERS = ('"', "]", "}", "<")
_NUMBER_CHARS = "0123456789.eE+-"


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Copy of `schema` with every object closed (additionalProperties: false) unless it says otherwise."""

    def close(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: close(v) for k, v in node.items()}
            if out.get("type") == "object" or "properties" in out:
                out.setdefault("additionalProperties", False)
            return out
        if isinstance(node, list):
            return [close(v) for v in node]
        return node

    return close(schema)


def evlf_grammar(schema: dict[str, Any], think_chars: int = THINK_MAX_CHARS) -> str:
    """Lark grammar for `<think>reasoning</think><answer>{json under schema}</answer>`."""
    body = dict(closed_schema(schema))
    body["x-guidance"] = {"whitespace_flexible": False}
    return (
        'start: "<think>" THINK "</think>" "<answer>" answer "</answer>"\n'
        f"THINK: /[^<]{{0,{int(think_chars)}}}/\n"
        f"answer: %json {json.dumps(body)}\n"
    )


class GrammarTokenizer:
    """An llguidance view of a Hugging Face fast tokenizer, plus what the processor needs per token."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_ids: list[int]) -> None:
        import numpy as np
        from llguidance.hf import from_tokenizer

        try:
            self.ll = from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=eos_ids[0] if eos_ids else None)
        except ValueError as err:
            raise ConfigError(f"constrained decoding needs a fast tokenizer: {err}") from None
        self.vocab_size = vocab_size
        self.eos_ids = list(eos_ids)
        self.banned = np.zeros(vocab_size, dtype=bool)
        for token_id in getattr(hf_tokenizer, "all_special_ids", []):
            if token_id < vocab_size and token_id not in self.eos_ids:
                self.banned[token_id] = True
        for token_id in getattr(hf_tokenizer, "added_tokens_decoder", {}):
            if token_id < vocab_size and token_id not in self.eos_ids:
                self.banned[token_id] = True
        self.closing = np.zeros(vocab_size, dtype=bool)  # tokens that end a string, array or object
        self.nonnumeric = np.zeros(vocab_size, dtype=bool)  # tokens that cannot extend a number
        pieces = hf_tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(hf_tokenizer)))))
        for token_id, piece in enumerate(pieces):
            if piece is None or self.banned[token_id]:
                continue
            text = hf_tokenizer.convert_tokens_to_string([piece]).lstrip()
            if text[:1] in _CLOSERS:
                self.closing[token_id] = True
            if text and text[0] not in _NUMBER_CHARS:
                self.nonnumeric[token_id] = True
        for token_id in self.eos_ids:
            if token_id < vocab_size:
                self.closing[token_id] = True


def min_budget(schema: dict[str, Any]) -> int:
    """Fewest new tokens in which a closing-phase reply always fits: the minimal reply plus the longest forced enum value."""
    longest = 0

    def walk(node: Any) -> None:
        nonlocal longest
        if isinstance(node, dict):
            for value in node.get("enum", []) if isinstance(node.get("enum"), list) else []:
                longest = max(longest, len(json.dumps(value)))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    return MIN_CONSTRAINED_TOKENS + longest


def think_budget(max_new_tokens: int, think_chars: int = THINK_MAX_CHARS) -> int:
    """Think length that always ends before the closing phase, so the answer gets the last FINISH_MARGIN tokens."""
    markup = len("<think></think><answer>")
    return max(0, min(think_chars, max_new_tokens - FINISH_MARGIN - markup))


@lru_cache(maxsize=64)
def _grammar_cache(schema_json: str, think_chars: int) -> str:  # key order kept: the grammar enforces property order
    return evlf_grammar(json.loads(schema_json), think_chars)


class GrammarLogitsProcessor:
    """A transformers logits processor keeping each batch row inside its grammar (None: free)."""

    def __init__(
        self,
        tokenizer: GrammarTokenizer,
        schemas: list[dict[str, Any] | None],
        max_new_tokens: int,
        think_chars: int = THINK_MAX_CHARS,
    ) -> None:
        from llguidance import LLMatcher

        self.tok = tokenizer
        self.max_new_tokens = max_new_tokens
        self.matchers: list[Any | None] = []
        for schema in schemas:
            if schema is None:
                self.matchers.append(None)
                continue
            grammar = _grammar_cache(json.dumps(schema), think_budget(max_new_tokens, think_chars))
            matcher = LLMatcher(tokenizer.ll, grammar, log_level=0)
            if matcher.is_error():
                raise ConfigError(f"the answer schema cannot be compiled for constrained decoding: {matcher.get_error()}")
            self.matchers.append(matcher)
        self.prompt_len: int | None = None
        self.mask_ns = 0  # time spent computing and applying masks, for the benchmark
        self.steps = 0

    @property
    def active(self) -> bool:
        return any(m is not None for m in self.matchers)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import time

        import numpy as np
        import torch
        from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

        start = time.perf_counter_ns()
        if self.prompt_len is None:
            self.prompt_len = int(input_ids.shape[1])
        generated = int(input_ids.shape[1]) - self.prompt_len
        left = self.max_new_tokens - generated
        vocab = min(int(scores.shape[-1]), self.tok.vocab_size)
        bitmask = allocate_token_bitmask(len(self.matchers), self.tok.vocab_size)
        rows = []
        for row, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if generated > 0:
                last = int(input_ids[row, -1])
                if not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(last)
            if matcher.is_error() or matcher.is_stopped():
                allowed = np.zeros(self.tok.vocab_size, dtype=bool)
                allowed[[i for i in self.tok.eos_ids if i < self.tok.vocab_size]] = True
            else:
                fill_next_token_bitmask(matcher, bitmask, row)
                bits = np.unpackbits(bitmask[row].view(np.uint8), bitorder="little")[: self.tok.vocab_size]
                allowed = bits.astype(bool) & ~self.tok.banned
                if left <= FINISH_MARGIN:  # close what is open: a closer, else anything but more digits
                    for tier in (self.tok.closing, self.tok.nonnumeric):
                        if (allowed & tier).any():
                            allowed = allowed & tier
                            break
                if not allowed.any():  # nothing legal left: end the reply
                    allowed[[i for i in self.tok.eos_ids if i < self.tok.vocab_size]] = True
            rows.append((row, allowed))
        if rows:
            keep = np.ones(tuple(scores.shape), dtype=bool)  # free rows stay untouched
            for row, allowed in rows:
                keep[row] = False
                keep[row, :vocab] = allowed[:vocab]
            scores = scores.masked_fill(~torch.from_numpy(keep).to(scores.device), float("-inf"))
        self.mask_ns += time.perf_counter_ns() - start
        self.steps += 1
        return scores

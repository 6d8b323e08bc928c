"""Constrained decoding: generate the EVLF reply under a JSON Schema with llguidance.

Why llguidance: it is small (no dependencies, no triton), accepts both a JSON
Schema and a Lark grammar with `%json` (so the whole `<think>..</think>
<answer>{json}</answer>` shape is constrained, not only the JSON), and costs
well under a millisecond a token. It ships no transformers logits processor, so
`GrammarLogitsProcessor` below is that glue.

What made it reliable on untrained models:
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
import math
import time
from functools import lru_cache
from typing import Any

import numpy as np

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
        eos = np.zeros(vocab_size, dtype=bool)
        eos[[i for i in self.eos_ids if i < vocab_size]] = True
        # the same sets packed as llguidance packs its token bitmask (bit i of 32-bit word i // 32 is token i),
        # so each decoding step narrows the mask with a few word-wise ANDs instead of vocabulary-sized arrays
        self.unbanned_bits = pack_tokens(~self.banned)
        self.closing_bits = pack_tokens(self.closing)
        self.nonnumeric_bits = pack_tokens(self.nonnumeric)
        self.eos_bits = pack_tokens(eos)
        self._compiled: dict[str, Any] = {}

    def matcher(self, grammar: str) -> Any:
        """A fresh matcher for `grammar`: compiled once per tokenizer (about 1.3 ms), then deep-copied (microseconds)."""
        from llguidance import LLMatcher

        template = self._compiled.get(grammar)
        if template is None:
            template = LLMatcher(self.ll, grammar, log_level=0)
            if template.is_error():
                raise ConfigError(f"the answer schema cannot be compiled for constrained decoding: {template.get_error()}")
            if len(self._compiled) >= 64:
                self._compiled.clear()
            self._compiled[grammar] = template
        return template.deep_copy()


def pack_tokens(tokens: Any) -> Any:
    """A boolean per-token array as llguidance's int32 bitmask row."""
    import numpy as np

    packed = np.packbits(np.asarray(tokens, dtype=bool), bitorder="little")
    words = -(-len(tokens) // 32)
    return np.pad(packed, (0, 4 * words - len(packed))).view("<i4").astype(np.int32)


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
        self.tok = tokenizer
        self.max_new_tokens = max_new_tokens
        self.matchers: list[Any | None] = []
        for schema in schemas:
            if schema is None:
                self.matchers.append(None)
                continue
            self.matchers.append(tokenizer.matcher(_grammar_cache(json.dumps(schema), think_budget(max_new_tokens, think_chars))))
        self.prompt_len: int | None = None
        self.mask_ns = 0  # time spent computing and applying masks, for the benchmark
        self.steps = 0
        self.rows = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
        # one bitmask for the whole generation: llguidance writes a row in place through its address
        self.bitmask = np.full((len(self.matchers), -(-tokenizer.vocab_size // 32)), -1, dtype=np.int32)
        self._row_bytes = self.bitmask.shape[1] * 4
        self._live = [(row, self.matchers[row], self.bitmask[row], self.bitmask[row].ctypes.data) for row in self.rows]
        self._scratch = np.empty(self.bitmask.shape[1], dtype=np.int32)
        self._inverted = np.empty((len(self.rows), self.bitmask.shape[1]), dtype=np.int32)

    @property
    def active(self) -> bool:
        return any(m is not None for m in self.matchers)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """One decoding step: advance each row's matcher by its last token, write its mask, narrow it, mask the scores.

        Kept to C calls on preallocated rows (no per-step arrays but the unpacked mask): the Python
        around llguidance is what this step costs beyond the grammar itself (benchmarks/backends.py).
        """
        start = time.perf_counter_ns()
        width = input_ids.shape[1]
        if self.prompt_len is None:
            self.prompt_len = width
            last = None
        else:
            last = input_ids[:, -1].tolist()
        closing = self.max_new_tokens - (width - self.prompt_len) <= FINISH_MARGIN
        for row, matcher, mask, address in self._live:
            if last is not None and not matcher.is_stopped() and not matcher.is_error():
                matcher.consume_token(last[row])
            if matcher.is_stopped() or matcher.is_error():
                mask[:] = self.tok.eos_bits
                continue
            matcher.unsafe_compute_mask_ptr(address, self._row_bytes)
            self._narrow(mask, closing)
        if self.rows:
            scores = apply_bitmask(scores, self.bitmask, self.rows, self._inverted)
        self.mask_ns += time.perf_counter_ns() - start
        self.steps += 1
        return scores

    def _narrow(self, mask: Any, closing: bool) -> None:
        """Drop banned tokens; near the budget's end keep closers, else non-digits; with nothing legal left, only EOS."""
        np.bitwise_and(mask, self.tok.unbanned_bits, out=mask)
        if closing:
            narrowed = self._scratch
            for tier in (self.tok.closing_bits, self.tok.nonnumeric_bits):
                np.bitwise_and(mask, tier, out=narrowed)
                if np.count_nonzero(narrowed):  # count_nonzero: a tenth of ndarray.any()'s call cost on a short row
                    mask[:] = narrowed
                    break
        if not np.count_nonzero(mask):
            mask[:] = self.tok.eos_bits


def apply_bitmask(scores: Any, bitmask: Any, rows: list[int], inverted: Any = None) -> Any:
    """Set the logits of disallowed tokens to -inf, in place, in the constrained `rows` only.

    On CUDA this is `llguidance.torch.apply_token_bitmask_inplace` (a compiled
    kernel on the device). On CPU that kernel costs tens of seconds of
    torch.compile per process, so the inverted packed words are unpacked by
    numpy (a byte lookup, cheaper here than shifts on a torch tensor, measured in
    benchmarks/backends.py) into bytes read as booleans (True: disallowed) and the
    scores masked in place; free rows are never touched. `inverted` (rows x words
    int32) is scratch space reused across steps.
    """
    import torch

    whole = len(rows) == scores.shape[0]
    packed = bitmask if whole and bitmask.shape[0] == len(rows) else bitmask[rows]
    sub = scores if whole else scores[rows]
    if sub.is_cuda:
        from llguidance.torch import apply_token_bitmask_inplace

        sub = sub.contiguous()
        apply_token_bitmask_inplace(sub, torch.from_numpy(packed).to(sub.device, non_blocking=True))
    else:
        vocab = sub.shape[-1]
        n = min(vocab, 32 * packed.shape[1])
        inverted = np.invert(packed, out=inverted if inverted is not None and inverted.shape == packed.shape else None)
        banned = torch.from_numpy(np.unpackbits(inverted.view(np.uint8), axis=1, count=n, bitorder="little").view(np.bool_))
        if n == vocab:
            sub.masked_fill_(banned, -math.inf)
        else:
            sub[:, :n].masked_fill_(banned, -math.inf)
            sub[:, n:] = -math.inf
    if not whole:
        scores[rows] = sub
    return scores

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
DISALLOWED_CACHE_BYTES = 64 << 20  # per tokenizer and device: about 440 masks at Qwen2's 151,936 tokens
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
        self._disallowed: dict[tuple[int, str], dict[tuple[bytes, bool], Any]] = {}

    def disallowed_cache(self, vocab: int, device: Any) -> dict[tuple[bytes, bool], Any]:
        """(grammar's packed mask, closing phase) -> the tokens to ban, for scores of this width on this device.

        Why: a grammar's masks repeat (a third of the steps of a first reply are
        new, none of a second reply to the same schema), and a step that only
        looks up its mask skips the narrowing and the unpacking, which right
        after the model's forward pass run with cold caches and cost several
        times what they cost alone (benchmarks/backends.py). Bounded to about
        DISALLOWED_CACHE_BYTES of masks.
        """
        cache = self._disallowed.setdefault((vocab, str(device)), {})
        if len(cache) * vocab >= DISALLOWED_CACHE_BYTES:
            cache.clear()
        return cache

    def clear_disallowed_cache(self) -> None:
        self._disallowed.clear()

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
        # rows still inside their grammar: (row, matcher, mask row, its address, its bytes); a finished row bans all but EOS
        self._live = [(row, self.matchers[row], self.bitmask[row], self.bitmask[row].ctypes.data, memoryview(self.bitmask[row]))
                      for row in self.rows]
        self._finished: set[int] = set()
        self._cache: dict[tuple[bytes, bool], Any] = {}  # the tokenizer's, once the first step shows the scores' width and device
        self._scratch = np.empty(self.bitmask.shape[1], dtype=np.int32)

    @property
    def active(self) -> bool:
        return any(m is not None for m in self.matchers)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """One decoding step: advance each row's matcher by its last token, get its mask, ban what it disallows.

        A mask seen before (per tokenizer) is a dictionary lookup; only a new one
        is narrowed and unpacked. The rest is kept to a few C calls: the Python
        around llguidance is what this step costs beyond the grammar itself
        (benchmarks/backends.py).
        """
        start = time.perf_counter_ns()
        width = input_ids.shape[1]
        if self.prompt_len is None:
            self.prompt_len = width
            last = None
            self._cache = self.tok.disallowed_cache(int(scores.shape[-1]), scores.device)
        else:
            last = input_ids.select(1, -1).tolist()
        closing = self.max_new_tokens - (width - self.prompt_len) <= FINISH_MARGIN
        cache = self._cache
        banned: dict[int, Any] = {}
        for row, matcher, mask, address, raw in self._live:
            if last is not None and not matcher.consume_token(last[row]) or matcher.is_stopped():
                self._finished.add(row)  # stopped, or the token broke the grammar (also "stopped"): only EOS from here on
                continue
            matcher.unsafe_compute_mask_ptr(address, self._row_bytes)
            key = (bytes(raw), closing)
            tokens = cache.get(key)
            if tokens is None:
                self._narrow(mask, closing)
                tokens = cache[key] = disallowed_tokens(mask, scores.shape[-1], scores.device)
            banned[row] = tokens
        if self._finished:
            self._live = [entry for entry in self._live if entry[0] not in self._finished]
            eos_only = cache.get((b"", False))
            if eos_only is None:
                eos_only = cache[(b"", False)] = disallowed_tokens(self.tok.eos_bits, scores.shape[-1], scores.device)
            banned.update(dict.fromkeys(self._finished, eos_only))
        ban_rows(scores, banned)
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


#: each byte of a packed mask as its 8 tokens, True where the bit is clear (the token is disallowed), low bit first
_DISALLOWED_BY_BYTE = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little") == 0


def disallowed_tokens(packed: Any, vocab: int, device: Any = "cpu") -> Any:
    """A (1, vocab) boolean tensor, True where the packed mask row disallows the token (and past its width)."""
    import torch

    banned = np.take(_DISALLOWED_BY_BYTE, np.ascontiguousarray(packed).view(np.uint8), axis=0).reshape(1, -1)
    if banned.shape[1] < vocab:  # the model's head is wider than the tokenizer: the extra columns are never allowed
        banned = np.pad(banned, ((0, 0), (0, vocab - banned.shape[1])), constant_values=True)
    tokens = torch.from_numpy(banned[:, :vocab])
    return tokens if str(device) == "cpu" else tokens.to(device)


def ban_rows(scores: Any, banned: dict[int, Any]) -> Any:
    """Set each listed row's disallowed logits to -inf, in place, in one masked fill where every row is listed."""
    import torch

    if not banned:
        return scores
    if len(banned) == scores.shape[0]:
        mask = banned[0] if len(banned) == 1 else torch.cat([banned[row] for row in range(scores.shape[0])])
        return scores.masked_fill_(mask, -math.inf)
    for row, tokens in banned.items():  # free rows are never touched
        scores[row].masked_fill_(tokens[0], -math.inf)
    return scores


def apply_bitmask(scores: Any, bitmask: Any, rows: list[int]) -> Any:
    """Set the logits of tokens that `bitmask` (llguidance's packed rows) disallows to -inf, in the `rows` listed only."""
    return ban_rows(scores, {row: disallowed_tokens(bitmask[row], scores.shape[-1], scores.device) for row in rows})

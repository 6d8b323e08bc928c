"""Backend benchmark: the tiny model on CPU through `TinyBackend`.

- requests per second at batch 1, 8 and 32 (one small image each, free decoding);
- the wrapper's overhead against `model.generate` on the same inputs with the
  same settings (goal: under 5 %); the wrapper adds the chat template, the
  processor, decoding and parsing. Headline: the wrapper's own time against
  model.generate timed inside the same call (immune to the noise of a shared
  machine); also printed: against a separate model.generate run;
- the cost of constrained decoding: the mask step per token (llguidance's
  mask, narrowing, applying it to the scores), the previous implementation
  against the current one interleaved in this process on the same inputs
  (their tokens must agree), and the end-to-end time per token with and
  without a JSON Schema;
- with CUDA present (`--gpu`), a larger random-weight Qwen2-VL in bf16:
  decode tokens per second at batch 1 against the memory-bandwidth bound
  (every weight read once per token).

Prints its figures; the last line is one JSON object with the headline numbers.
Usage: python benchmarks/backends.py [--tokens 128] [--repeats 3] [--batches 1,8,32] [--gpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def old_processor_class():
    """The mask step as it was before (numpy-allocated mask each step, per-row tensor reads, unpack + compare), to compare against."""
    import numpy as np
    import torch
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

    from evlf.plugins.backends.constrained import FINISH_MARGIN, GrammarLogitsProcessor

    def old_apply(scores, bitmask, rows):
        index = rows if len(rows) < scores.shape[0] else slice(None)
        packed = bitmask[index]
        sub = scores[index] if isinstance(index, list) else scores
        n = min(int(sub.shape[-1]), 32 * packed.shape[1])
        bits = np.unpackbits(packed.view(np.uint8), axis=1, count=n, bitorder="little")
        sub[:, :n].masked_fill_(torch.from_numpy(bits) == 0, float("-inf"))
        sub[:, n:] = float("-inf")
        if isinstance(index, list):
            scores[index] = sub
            return scores
        return sub

    def old_narrow(tok, mask, left):
        mask &= tok.unbanned_bits
        if left <= FINISH_MARGIN:
            for tier in (tok.closing_bits, tok.nonnumeric_bits):
                narrowed = mask & tier
                if narrowed.any():
                    mask[:] = narrowed
                    break
        if not mask.any():
            mask[:] = tok.eos_bits

    class OldGrammarLogitsProcessor(GrammarLogitsProcessor):
        def __call__(self, input_ids, scores):
            start = time.perf_counter_ns()
            if self.prompt_len is None:
                self.prompt_len = int(input_ids.shape[1])
            generated = int(input_ids.shape[1]) - self.prompt_len
            bitmask = allocate_token_bitmask(len(self.matchers), self.tok.vocab_size)
            rows = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
            for row in rows:
                matcher = self.matchers[row]
                if generated > 0 and not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(int(input_ids[row, -1]))
                if matcher.is_error() or matcher.is_stopped():
                    bitmask[row] = self.tok.eos_bits
                    continue
                fill_next_token_bitmask(matcher, bitmask, row)
                old_narrow(self.tok, bitmask[row], self.max_new_tokens - generated)
            if rows:
                scores = old_apply(scores, bitmask, rows)
            self.mask_ns += time.perf_counter_ns() - start
            self.steps += 1
            return scores

    OldGrammarLogitsProcessor.apply = staticmethod(old_apply)
    return OldGrammarLogitsProcessor


class TimedMatcher:
    """An LLMatcher proxy that sums the time spent inside llguidance's own per-token calls (the floor of the mask step)."""

    def __init__(self, matcher, sink: list[int]) -> None:
        self.matcher, self.sink = matcher, sink

    def consume_token(self, token):
        start = time.perf_counter_ns()
        try:
            return self.matcher.consume_token(token)
        finally:
            self.sink[0] += time.perf_counter_ns() - start

    def unsafe_compute_mask_ptr(self, address, size):
        start = time.perf_counter_ns()
        try:
            return self.matcher.unsafe_compute_mask_ptr(address, size)
        finally:
            self.sink[0] += time.perf_counter_ns() - start

    def __getattr__(self, name):
        return getattr(self.matcher, name)


def grammar_timed_class():
    """The current processor with llguidance's share timed (a third pass: the proxy's own cost stays out of old and new)."""
    from evlf.plugins.backends.constrained import GrammarLogitsProcessor

    class GrammarTimed(GrammarLogitsProcessor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.ll_ns = [0]
            self.matchers = [m if m is None else TimedMatcher(m, self.ll_ns) for m in self.matchers]
            self._live = [(row, self.matchers[row], *rest) for row, _, *rest in self._live]

    return GrammarTimed


def wide_vocab_apply(old_apply, vocab: int = 151_936, reps: int = 200) -> dict[str, float]:
    """Applying one step's mask at a real model's vocabulary (Qwen2's): old, new on a mask not seen before, new on one seen before.

    The mask has runs, as a grammar's do.
    """
    import numpy as np
    import torch

    from evlf.plugins.backends.constrained import apply_bitmask, ban_rows, disallowed_tokens, pack_tokens

    rng = np.random.default_rng(0)
    allowed = np.repeat(rng.random(vocab // 64 + 1) < 0.3, 64)[:vocab]  # runs of 64 tokens, 30 % allowed
    bitmask = pack_tokens(allowed)[None]
    seen = {0: disallowed_tokens(bitmask[0], vocab)}
    times: dict[str, list[float]] = {"old": [], "new": [], "seen": []}
    scores = torch.randn(1, vocab)
    steps = (("old", lambda w: old_apply(w, bitmask, [0])), ("new", lambda w: apply_bitmask(w, bitmask, [0])),
             ("seen", lambda w: ban_rows(w, seen)))
    for _ in range(reps):
        for name, fn in steps:
            work = scores.clone()
            start = time.perf_counter_ns()
            fn(work)
            times[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: statistics.median(v) for name, v in times.items()}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per request")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8,32", help="batch sizes for the overhead part ('' skips it)")
    parser.add_argument("--gpu", action="store_true", help="also run the larger random model on CUDA")
    args = parser.parse_args()

    import numpy as np
    import torch

    from evlf.core.answer import answer_json_schema
    from evlf.core.backends.base import GenerationRequest, Turn
    from evlf.plugins.backends.tiny import TinyBackend
    from evlf.plugins.backends.constrained import GrammarLogitsProcessor

    threads = torch.get_num_threads()
    cache = tempfile.mkdtemp(prefix="evlf-bench-")
    started = time.perf_counter()
    backend = TinyBackend("qwen2_vl", cache_dir=cache, repair=False, max_batch_size=32)
    print(f"tiny qwen2_vl built and loaded in {time.perf_counter() - started:.2f} s "
          f"({sum(p.numel() for p in backend.model.parameters()):,} parameters, untrained)")
    rng = np.random.default_rng(0)

    def requests(n: int, schema=None) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                turns=[Turn(role="user", text="Describe the finding.", images=[rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)])],
                max_new_tokens=args.tokens,
                json_schema=schema,
            )
            for _ in range(n)
        ]

    # same settings the backend uses: greedy, all tokens generated, one thread for a tiny model
    def raw_kwargs() -> dict:
        return {"max_new_tokens": args.tokens, "do_sample": False, "pad_token_id": backend._pad_id, "eos_token_id": backend._eos_ids,
                "temperature": None, "top_p": None, "top_k": None}

    backend.generate(requests(2))  # warm-up
    figures: dict[str, float] = {}
    overhead: dict[int, float] = {}
    across: dict[int, float] = {}
    inner: list[float] = []
    model_generate = backend.model.generate

    def timed_generate(*a, **k):
        start = time.perf_counter()
        try:
            return model_generate(*a, **k)
        finally:
            inner.append(time.perf_counter() - start)

    backend.model.generate = timed_generate
    batches = [int(b) for b in args.batches.split(",") if b]
    for batch in batches:
        reqs = requests(batch)
        inputs, _ = backend.prepare(reqs)
        threads = torch.get_num_threads()

        def raw_generate() -> None:
            torch.set_num_threads(backend.threads or threads)
            try:
                with torch.inference_mode():
                    model_generate(**inputs, **raw_kwargs())
            finally:
                torch.set_num_threads(threads)

        # interleaved, best of each: the machine is shared, so noise hits both sides alike
        wrapped_times, raw_times, inner_shares = [], [], []
        for _ in range(args.repeats):
            inner.clear()
            wrapped_times.append(best_of(lambda: backend.generate(reqs), 1))
            inner_shares.append((wrapped_times[-1] - sum(inner)) / sum(inner))
            raw_times.append(best_of(raw_generate, 1))
        wrapped, raw = min(wrapped_times), min(raw_times)
        figures[f"rps_batch{batch}"] = batch / wrapped
        # the wrapper's own work (template, processor, decode, parse) against model.generate inside the same call
        overhead[batch] = 100 * statistics.median(inner_shares)
        across[batch] = 100 * (wrapped - raw) / raw
        print(f"batch {batch:>2}: {batch / wrapped:7.2f} requests/s  ({wrapped * 1000:7.1f} ms a batch; wrapper overhead "
              f"{overhead[batch]:+.1f} % of model.generate in the same call, {across[batch]:+.1f} % against a separate "
              f"model.generate run of {raw * 1000:.1f} ms)")

    # constrained decoding: mask cost per token, and per-token time with and without a schema
    schema = answer_json_schema(["pneumonia", "normal", "effusion"])
    budget = max(args.tokens, 200)
    free = requests(1)
    free[0] = free[0].model_copy(update={"max_new_tokens": budget})
    cons = [free[0].model_copy(update={"json_schema": schema})]
    t_free = best_of(lambda: backend.generate(free), args.repeats)
    n_free = backend.generate(free)[0].tokens_out
    t_cons = best_of(lambda: backend.generate(cons), args.repeats)
    gen = backend.generate(cons)[0]
    inputs, _ = backend.prepare(cons)
    from transformers import LogitsProcessorList

    # the mask step, old against new, interleaved in this process on the same inputs (same tokens out, checked)
    old_cls = old_processor_class()
    # "new": a first reply to this schema (the tokenizer's mask cache emptied before it); "new_seen": a later one
    mask_per_token: dict[str, list[float]] = {"old": [], "new": [], "new_seen": [], "llguidance": []}
    outputs: dict[str, list] = {name: [] for name in mask_per_token}
    passes = (("old", old_cls), ("new", GrammarLogitsProcessor), ("new_seen", GrammarLogitsProcessor), ("llguidance", grammar_timed_class()))
    grammar_tok = backend.grammar_tokenizer()
    torch.set_num_threads(1)
    for _ in range(max(args.repeats, 5)):
        for name, cls in passes:
            if name in ("new", "llguidance"):
                grammar_tok.clear_disallowed_cache()
            proc = cls(grammar_tok, [schema], budget)
            with torch.inference_mode():
                out = backend.model.generate(**inputs, **{**raw_kwargs(), "max_new_tokens": budget}, logits_processor=LogitsProcessorList([proc]))
            spent = proc.ll_ns[0] if name == "llguidance" else proc.mask_ns
            mask_per_token[name].append(spent / 1e6 / max(proc.steps, 1))
            outputs[name].append(out.tolist())
    torch.set_num_threads(threads)
    same = all(out == outputs["old"] for out in outputs.values())
    old_ms, mask_ms, seen_ms, ll_ms = (statistics.median(mask_per_token[k]) for k in ("old", "new", "new_seen", "llguidance"))
    print(f"constrained mask step per token, inside generate, interleaved medians of {len(mask_per_token['new'])}: "
          f"old {old_ms:.4f} ms; new, first reply to the schema {mask_ms:.4f} ms ({old_ms / mask_ms:.2f}x less), "
          f"a later reply {seen_ms:.4f} ms ({old_ms / seen_ms:.2f}x less); same tokens out: {same}; of the first reply's step, "
          f"inside llguidance (consume_token + compute_mask, a separate pass) {ll_ms:.4f} ms, so evlf's own part: "
          f"old {old_ms - ll_ms:.4f} ms, new {mask_ms - ll_ms:.4f} ms")
    wide = wide_vocab_apply(old_cls.apply)
    print(f"applying one mask at a 151,936-token vocabulary (medians of 200, interleaved): old {wide['old']:.4f} ms, "
          f"new on a new mask {wide['new']:.4f} ms ({wide['old'] / wide['new']:.2f}x less), on a mask seen before "
          f"{wide['seen']:.4f} ms ({wide['old'] / wide['seen']:.2f}x less)")
    per_tok_free = 1000 * t_free / max(n_free, 1)
    per_tok_cons = 1000 * t_cons / max(gen.tokens_out, 1)
    print(f"constrained decoding: mask {mask_ms:.3f} ms/token (llguidance + masking), "
          f"{per_tok_cons:.3f} ms/token end to end vs {per_tok_free:.3f} ms/token free; "
          f"answer valid: {gen.answer is not None} ({gen.tokens_out} tokens)")

    headline = {
        "overhead_pct": round(statistics.mean(overhead.values()), 2) if overhead else None,
        **{f"overhead_pct_b{b}": round(overhead[b], 2) for b in batches},
        "overhead_pct_separate_runs": round(statistics.mean(across.values()), 2) if across else None,
        **{f"rps_batch{b}": round(figures[f"rps_batch{b}"], 2) for b in batches},
        "constrained_mask_ms_per_token": round(mask_ms, 4),
        "constrained_mask_ms_per_token_old": round(old_ms, 4),
        "constrained_mask_speedup": round(old_ms / mask_ms, 2),
        "constrained_mask_ms_per_token_seen": round(seen_ms, 4),
        "constrained_mask_speedup_seen": round(old_ms / seen_ms, 2),
        "constrained_same_tokens": same,
        "constrained_llguidance_ms_per_token": round(ll_ms, 4),
        "constrained_own_ms_per_token": round(mask_ms - ll_ms, 4),
        "constrained_own_ms_per_token_old": round(old_ms - ll_ms, 4),
        "wide_vocab_apply_ms": round(wide["new"], 4),
        "wide_vocab_apply_ms_old": round(wide["old"], 4),
        "wide_vocab_apply_ms_seen": round(wide["seen"], 4),
        "constrained_ms_per_token": round(per_tok_cons, 3),
        "free_ms_per_token": round(per_tok_free, 3),
        "new_tokens": args.tokens,
    }
    if args.gpu and torch.cuda.is_available():
        headline.update(gpu_bandwidth_check())
    print(json.dumps(headline))


def gpu_bandwidth_check() -> dict[str, float]:
    """Decode tokens/s of a ~1.5B random Qwen2-VL in bf16 at batch 1 against weights-bytes / bandwidth."""
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2VLConfig

    text = {"vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 16,
            "num_key_value_heads": 4, "head_dim": 128, "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 10000.0}}
    vision = {"depth": 2, "embed_dim": 256, "hidden_size": 2048, "num_heads": 4}
    config = Qwen2VLConfig(text_config=text, vision_config=vision)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16).cuda().eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, 32000, (1, 32), device="cuda")
    kwargs = {"max_new_tokens": 256, "min_new_tokens": 256, "do_sample": False}
    with torch.inference_mode():
        model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(input_ids=ids, **kwargs)
        torch.cuda.synchronize()
    tps = 256 / (time.perf_counter() - start)
    free, total = torch.cuda.mem_get_info()
    props = torch.cuda.get_device_properties(0)
    # peak DRAM bandwidth from the device's memory clock and bus width when exposed, else H200's 4.8 TB/s
    bandwidth = 4.8e12
    if getattr(props, "memory_clock_rate", 0) and getattr(props, "memory_bus_width", 0):
        bandwidth = 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8
    bound = bandwidth / weight_bytes
    print(f"GPU {props.name}: {weight_bytes / 1e9:.2f} GB of bf16 weights, decode {tps:.1f} tokens/s at batch 1, "
          f"bandwidth bound {bound:.0f} tokens/s ({100 * tps / bound:.1f} % of it)")
    return {"gpu_tokens_per_s": round(tps, 1), "gpu_bound_tokens_per_s": round(bound, 1), "gpu_pct_of_bound": round(100 * tps / bound, 1)}


if __name__ == "__main__":
    main()

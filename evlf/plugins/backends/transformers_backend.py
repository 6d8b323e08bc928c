"""In-process backend: a local model directory through transformers.

AutoModelForImageTextToText + the family's processor and chat template; CUDA
bf16 when present, CPU float32 otherwise; several requests go into one
`generate` call (left padding). Requests carrying a JSON Schema are decoded
under it (constrained.py), with at least `min_budget(schema)` new
tokens so the reply is never cut off. Models load only from local paths.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity
from evlf.core.errors import ConfigError
from evlf.core.hashing import weights_digest
from evlf.models import register_architectures
from evlf.core.hookspecs import hookimpl
from evlf.plugins.backends.adapter import chat_messages, finish, generate_with_repair, reject_unknown
from evlf.plugins.backends.constrained import GrammarLogitsProcessor, GrammarTokenizer, min_budget
from evlf.plugins.backends.families import Family, family_of
from evlf.plugins.backends.pixels import PREPARED, pixel_groups, split_groups
from evlf.plugins.backends.qwen_batch import qwen_inputs
from evlf.plugins.backends.processors import builds_mm_token_types, decode_rows, fed_sizes, load_processor, mm_token_types

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16"}
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 array, handed to the image processor as is (a PIL copy would be converted straight back)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"backend images must be 8-bit RGB arrays, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ConfigError(f"backend images must be HxWx3 arrays, got shape {array.shape}")
    return np.ascontiguousarray(array[..., :3])


def _image_placeholder(image: np.ndarray) -> dict[str, Any]:
    """The chat template marks where an image goes; the processor takes the pixels separately."""
    return {"type": "image"}


def _until_eos(tokens: list[int], eos_ids: list[int]) -> list[int]:
    """The generated tokens up to and including the first end-of-sequence token."""
    for j, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[: j + 1]
    return tokens


class TransformersBackend(Backend):
    """A local VLM directory (config.json + weights + processor files), loaded offline."""

    name: ClassVar[str] = "transformers"

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 8,
        repair: bool = True,
        **kwargs: Any,
    ) -> None:
        reject_unknown(self.name, kwargs)
        import torch

        self.path = Path(model).expanduser()
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"{model}: not a model directory with config.json (evlf loads models from local paths only)")
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        if dtype not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r} (use one of {', '.join(sorted(set(_DTYPES)))})")
        self.dtype = _DTYPES[dtype]
        self.max_batch_size = max_batch_size
        self.repair = repair
        config = json.loads((self.path / "config.json").read_text())
        self.family: Family = family_of(str(config.get("model_type", "")))
        self.model, self.processor = self._load()
        marker = self.path / "evlf_tiny.json"
        trained = not (marker.exists() and json.loads(marker.read_text()).get("trained") is False)
        self._identity = ModelIdentity(
            name=self.path.name,
            family=self.family.name,
            weights_sha256=weights_digest(self.path),
            trained=trained,
            box_convention=self.family.box_convention,
        )
        tokenizer = self.processor.tokenizer
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = [int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None] or [int(tokenizer.eos_token_id)]
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self._eos_ids[0]
        self._grammar_tok: GrammarTokenizer | None = None
        self._prompts: dict[str, str] = {}
        self.threads: int | None = None  # torch intra-op threads during generate (None: leave as is)

    # ------------------------------------------------------------------ loading

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress bars would garble the CLI's own progress display
        key = (str(self.path.resolve()), self.device, self.dtype)
        with _LOAD_LOCK:
            if key not in _LOADED:
                register_architectures(json.loads((self.path / "config.json").read_text()))  # e.g. the demo model's tower
                processor = load_processor(self.path, self.family)
                processor.tokenizer.padding_side = "left"
                try:
                    model = AutoModelForImageTextToText.from_pretrained(
                        self.path, local_files_only=True, dtype=getattr(torch, self.dtype)
                    )
                except (OSError, ValueError) as err:
                    raise ConfigError(f"{self.path}: cannot load the model: {err}") from None
                _LOADED[key] = (model.to(self.device).eval(), processor)
            return _LOADED[key]

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def close(self) -> None:
        """Drop the process-wide copy of this model (other backends on the same directory reload it)."""
        with _LOAD_LOCK:
            _LOADED.pop((str(self.path.resolve()), self.device, self.dtype), None)
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def grammar_tokenizer(self) -> GrammarTokenizer:
        if self._grammar_tok is None:
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._grammar_tok = GrammarTokenizer(self.processor.tokenizer, vocab, self._eos_ids)
        return self._grammar_tok

    # ------------------------------------------------------------------ generation

    def _prompt(self, messages: list[dict[str, Any]]) -> str:
        """The chat template's text for these messages; rendered once per distinct prompt (batches repeat them)."""
        key = json.dumps(messages, sort_keys=True, default=repr)
        text = self._prompts.get(key)
        if text is None:
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            if len(self._prompts) >= 512:
                self._prompts.clear()
            self._prompts[key] = text
        return text

    def prepare(self, requests: list[GenerationRequest]) -> tuple[Any, list[list[tuple[int, int]]]]:
        """Processor inputs for a batch and, per request, the fed size of each final-turn image."""
        texts = [self._prompt(chat_messages(r, _image_placeholder, plain_text=False)) for r in requests]
        images = [_to_rgb(img) for r in requests for t in r.turns for img in t.images]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        inputs = None
        if images:
            groups = pixel_groups(self.processor.image_processor, images)  # the batch's resize/normalise in a few numpy calls
            if groups is None:
                kwargs.update(images=images, input_data_format="channels_last")
            else:
                inputs = qwen_inputs(self.processor, texts, groups)  # Qwen2-VL: the rest of its processor, batched
                if inputs is None:
                    kwargs.update(images=split_groups(groups), **PREPARED)
        types = builds_mm_token_types(self.processor)
        if types:
            kwargs["return_mm_token_type_ids"] = False  # built below for the whole batch at once
        if inputs is None:
            inputs = self.processor(**kwargs)
        if types:
            inputs["mm_token_type_ids"] = mm_token_types(self.processor, inputs["input_ids"])
        sizes = fed_sizes(self.family, self.processor, inputs, len(images))
        per_request: list[list[tuple[int, int]]] = []
        offset = 0
        for r in requests:
            count = sum(len(t.images) for t in r.turns)
            last = len(r.turns[-1].images)
            mine = sizes[offset : offset + count]
            per_request.append(mine[count - last :] if sizes else [])
            offset += count
        return inputs.to(self.device), per_request

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        if self.repair:
            return generate_with_repair(requests, self._generate_all)
        return self._generate_all(requests)

    def _generate_all(self, requests: list[GenerationRequest]) -> list[Generation]:
        """One pass: requests grouped by their generation settings, in batches of `max_batch_size`."""
        # a constrained reply cut off by the budget would not parse: give it the room it needs
        requests = [
            r.model_copy(update={"max_new_tokens": min_budget(r.json_schema)})
            if r.json_schema and r.max_new_tokens < min_budget(r.json_schema)
            else r
            for r in requests
        ]
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple[int, float, int | None], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.max_new_tokens, r.temperature, r.seed)].append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start : start + self.max_batch_size]
                for i, gen in zip(chunk, self._generate_batch([requests[i] for i in chunk]), strict=True):
                    results[i] = gen
        return [g for g in results if g is not None]

    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        started = time.perf_counter()
        inputs, sizes = self.prepare(requests)
        first = requests[0]
        kwargs: dict[str, Any] = {"max_new_tokens": first.max_new_tokens, "pad_token_id": self._pad_id, "eos_token_id": self._eos_ids}
        if first.temperature > 0:
            kwargs.update(do_sample=True, temperature=first.temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if any(r.json_schema for r in requests):
            grammar = GrammarLogitsProcessor(self.grammar_tokenizer(), [r.json_schema for r in requests], first.max_new_tokens)
            kwargs["logits_processor"] = LogitsProcessorList([grammar])
        if first.seed is not None:
            torch.manual_seed(first.seed)
        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, **kwargs)
        finally:
            torch.set_num_threads(threads)
        latency = (time.perf_counter() - started) * 1000
        prompt_len = int(inputs["input_ids"].shape[1])
        rows = [_until_eos(tokens, self._eos_ids) for tokens in output[:, prompt_len:].cpu().tolist()]
        tokens_in = inputs["attention_mask"].sum(dim=1).tolist()
        texts = decode_rows(self.processor.tokenizer, rows)
        out = [
            finish(text, self._identity, tokens_in=int(n_in), tokens_out=len(tokens), latency_ms=latency, image_sizes=sizes[row])
            for row, (text, tokens, n_in) in enumerate(zip(texts, rows, tokens_in, strict=True))
        ]
        return out


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(TransformersBackend)

"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, `transformers serve`, llama.cpp).

Images travel as base64 PNG data URLs; a request's JSON Schema becomes
`response_format: json_schema` (servers that ignore it still get parsed, and a
bad reply gets one repair turn). Timeouts, connection failures and 5xx answers
are retried with exponential backoff (tenacity); 4xx answers are not, since
asking again cannot fix them.

Errors: a server that stays down, slow or broken after the retries raises
`BackendError` (one line, naming the URL); a request the server refuses (4xx)
or a reply that does not parse comes back as that request's `Generation.error`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from evlf.core.backends.base import Backend, Generation, GenerationRequest, ModelIdentity
from evlf.core.errors import BackendError, ConfigError
from evlf.core.geometry import BoxConvention
from evlf.core.hookspecs import hookimpl
from evlf.core.pixels import png_data_url
from evlf.plugins.backends.adapter import chat_messages, finish, generate_with_repair, reject_unknown
from evlf.plugins.backends.constrained import closed_schema
from evlf.plugins.backends.families import FAMILIES
from evlf.plugins.backends.processors import qwen_resize

# model-name fragments that identify a family when the server does not say
_NAME_HINTS = (
    ("qwen2.5-vl", "qwen2_5_vl"),
    ("qwen2_5_vl", "qwen2_5_vl"),
    ("qwen3-vl", "qwen3_vl"),
    ("qwen2-vl", "qwen2_vl"),
    ("internvl", "internvl"),
    ("evlf", "internvl"),
    ("llava", "llava"),
    ("smolvlm", "idefics3"),
    ("idefics", "idefics3"),
    ("gemma-3", "gemma3"),
    ("medgemma", "gemma3"),
)


def guess_family(model: str) -> str | None:
    lowered = model.lower()
    for hint, family in _NAME_HINTS:
        if hint in lowered:
            return family
    return None


def _image_url(image: np.ndarray) -> dict[str, Any]:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ConfigError(f"backend images must be 8-bit RGB arrays, got {array.dtype} {array.shape}")
    return {"type": "image_url", "image_url": {"url": png_data_url(array)}}


def chat_request_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    """The request in the chat-completions message format, images as PNG data URLs."""
    return chat_messages(request, _image_url, plain_text=True)


class OpenAIBackend(Backend):
    """Chat completions over HTTP; `family` (guessed from the model name when not given) sets the box convention."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str,
        endpoint: str | None = None,
        api_key: str | None = None,
        timeout: float = 60,
        max_retries: int = 3,
        concurrency: int = 4,
        family: str | None = None,
        repair: bool = True,
        backoff: float = 0.5,
        **kwargs: Any,
    ) -> None:
        reject_unknown(self.name, kwargs)
        import openai

        self.endpoint = endpoint or os.environ.get("EVLF_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get("EVLF_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not self.endpoint and not key:
            raise ConfigError("the openai backend needs an endpoint (EVLF_OPENAI_BASE_URL / OPENAI_BASE_URL) or an API key")
        if timeout <= 0 or max_retries < 0 or concurrency < 1:
            raise ConfigError("openai backend: timeout must be > 0, max_retries >= 0, concurrency >= 1")
        family = family or guess_family(model)
        if family is not None and family not in FAMILIES:
            raise ConfigError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
        self.model = model
        self.family = family
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.repair = repair
        self.backoff = backoff
        # local servers accept any key; the client insists on one
        self.client = openai.OpenAI(base_url=self.endpoint, api_key=key or "EMPTY", timeout=timeout, max_retries=0)
        convention = FAMILIES[family].box_convention if family else BoxConvention.UNIT
        self._identity = ModelIdentity(name=model, family=family or "unknown", weights_sha256=None, trained=True, box_convention=convention)

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def fed_size(self, image: np.ndarray) -> tuple[int, int]:
        """Best knowledge of the size the server's processor feeds: Qwen's resize rule, else the original."""
        h, w = np.asarray(image).shape[:2]
        if self.family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
            factor = 32 if self.family == "qwen3_vl" else 28
            try:
                rh, rw = qwen_resize(h, w, factor=factor, max_pixels=factor * factor * 1280)
            except ValueError:  # an aspect ratio the processor refuses: the server will say so
                return w, h
            return rw, rh
        return w, h

    def _call(self, request: GenerationRequest) -> Any:
        import openai
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        def transient(err: BaseException) -> bool:
            if isinstance(err, (openai.APITimeoutError, openai.APIConnectionError)):
                return True
            return isinstance(err, openai.APIStatusError) and err.status_code >= 500

        params: dict[str, Any] = {
            "model": self.model,
            "messages": chat_request_messages(request),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            params["seed"] = request.seed
        if request.json_schema:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "evlf_answer", "schema": closed_schema(request.json_schema), "strict": True},
            }
        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=30),
            reraise=True,
        )
        return retrying(self.client.chat.completions.create, **params)

    def _one(self, request: GenerationRequest) -> Generation:
        import openai

        sizes = [self.fed_size(img) for img in request.turns[-1].images]
        started = time.perf_counter()
        where = self.endpoint or "the OpenAI API"
        try:
            response = self._call(request)
        except openai.APITimeoutError:
            raise BackendError(f"{where}: no answer within {self.timeout:g} s after {self.max_retries + 1} tries") from None
        except openai.APIConnectionError as err:
            raise BackendError(f"{where}: cannot reach the server after {self.max_retries + 1} tries ({err.__cause__ or err})") from None
        except openai.APIStatusError as err:
            if err.status_code >= 500:
                raise BackendError(f"{where}: server error {err.status_code} after {self.max_retries + 1} tries") from None
            return finish("", self._identity, image_sizes=sizes, error=f"server refused the request ({err.status_code}): {err.message}")
        except (openai.APIResponseValidationError, ValueError) as err:
            raise BackendError(f"{where}: the server answered something that is not a chat completion ({err})") from None
        latency = (time.perf_counter() - started) * 1000
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise BackendError(f"{where}: the server answered something that is not a chat completion (no choices)")
        text = choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        return finish(
            text,
            self._identity,
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_ms=latency,
            image_sizes=sizes,
        )

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        if self.repair:  # a request the server refused has no reply to repair
            return generate_with_repair(requests, self._generate_all, lambda g: g.answer is None and bool(g.text))
        return self._generate_all(requests)

    def _generate_all(self, requests: list[GenerationRequest]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        self.client.close()


@hookimpl
def register_backends(register: Callable[[Any], None]) -> None:
    register(OpenAIBackend)

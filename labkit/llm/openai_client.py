"""OpenAI-compatible chat client (OpenAI, DeepSeek, DashScope, vLLM, Ollama, llama.cpp server, ...).

Configuration comes from arguments, else the environment, else a ``.env`` file (python-dotenv; the current folder
upwards, then the repo root): ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``LABKIT_API_MODEL``.

Retries: the SDK's own retries are switched off (``max_retries=0``) and tenacity retries instead, with exponential
backoff plus jitter, on 429, 5xx, timeouts and connection errors only; other errors (400, 401, ...) fail at once.
The API key never appears in ``repr``/``str``, logs or raised errors (messages are scrubbed of it).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from dotenv import dotenv_values, find_dotenv
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from labkit.errors import LabkitError
from labkit.paths import REPO_ROOT
from labkit.types import ChatResult, Message

from .base import cut_at_stop, cut_until

ENV_KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LABKIT_API_MODEL")
NO_KEY = "not-needed"  # placeholder for local servers (llama.cpp, vLLM, Ollama) that ignore the key


class LLMRequestError(LabkitError):
    """A request to an OpenAI-compatible server failed (after retries when the error was retryable)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def read_env() -> dict[str, str]:
    """``OPENAI_*``/``LABKIT_API_MODEL`` settings: process environment first, then ``.env`` files."""
    values: dict[str, str] = {}
    for path in (REPO_ROOT / ".env", find_dotenv(usecwd=True)):
        if path and os.path.isfile(path):
            values.update({k: v for k, v in dotenv_values(path).items() if k in ENV_KEYS and v})
    values.update({k: os.environ[k] for k in ENV_KEYS if os.environ.get(k)})
    return values


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors are worth retrying; everything else is not."""
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class OpenAIChat:
    """Chat with any OpenAI-compatible ``/v1/chat/completions`` endpoint through the official ``openai`` SDK."""

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        concurrency: int = 4,
    ):
        if not api_key and not base_url:
            raise LabkitError(
                "no API configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI server, "
                "LABKIT_API_MODEL for the model) in the environment or in a .env file (see .env.example)"
            )
        self._api_key = api_key or NO_KEY
        self.base_url = base_url
        self._model = model
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff, self.concurrency = backoff, max_backoff, concurrency
        self._client = openai.OpenAI(api_key=self._api_key, base_url=base_url, timeout=timeout, max_retries=0)

    @classmethod
    def from_env(cls, model: str | None = None, **kw: Any) -> OpenAIChat:
        """Build from ``OPENAI_API_KEY``/``OPENAI_BASE_URL``/``LABKIT_API_MODEL`` (env or ``.env``)."""
        env = read_env()
        return cls(
            model=model or env.get("LABKIT_API_MODEL"),
            base_url=env.get("OPENAI_BASE_URL"),
            api_key=env.get("OPENAI_API_KEY"),
            **kw,
        )

    @property
    def name(self) -> str:
        """The model id; when none was configured, the first model the server lists."""
        if self._model is None:
            models = self._call(lambda: self._client.models.list().data)
            if not models:
                raise LLMRequestError(f"server {self.base_url} lists no models; set LABKIT_API_MODEL")
            self._model = models[0].id
        return self._model

    def __repr__(self) -> str:
        key = "<unset>" if self._api_key == NO_KEY else "<set, hidden>"
        return f"OpenAIChat(model={self._model!r}, base_url={self.base_url!r}, api_key={key})"

    __str__ = __repr__

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key != NO_KEY else text

    def _call(self, fn: Any) -> Any:
        """Run one SDK call with retries; SDK errors become :class:`LLMRequestError` without the key."""
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff) + wait_random(0, self.backoff),
            reraise=True,
        )
        try:
            return retrying(fn)
        except openai.APIError as exc:
            status = getattr(exc, "status_code", None)
            kind = type(exc).__name__
            where = self.base_url or "api.openai.com"
            raise LLMRequestError(self._scrub(f"{kind} from {where}: {exc}"), status_code=status) from None

    def chat(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        until: str | None = None,
    ) -> ChatResult:
        payload = [{"role": m["role"], "content": m["content"]} for m in messages]
        model = self.name
        resp = self._call(
            lambda: self._client.chat.completions.create(
                model=model, messages=payload, max_tokens=max_new_tokens, temperature=temperature,
                stop=stop or None,
            )
        )
        text = cut_until(cut_at_stop(resp.choices[0].message.content or "", stop), until)
        usage = resp.usage
        return ChatResult(
            text=text,
            model=model,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        """Send up to ``concurrency`` requests at a time; results keep the input order."""
        if len(batch) <= 1 or self.concurrency <= 1:
            return [self.chat(m, **kw) for m in batch]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda m: self.chat(m, **kw), batch))

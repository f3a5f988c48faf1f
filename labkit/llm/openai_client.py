"""OpenAI-compatible chat client (OpenAI, DeepSeek, DashScope, vLLM, Ollama, llama.cpp server, ...).

Configuration comes from arguments, else the environment, else a ``.env`` file (python-dotenv, no interpolation;
only the repo root's and the current folder's, never a parent folder's): ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``LABKIT_API_MODEL``. A ``.env`` may not redirect a key it did not supply: when ``OPENAI_BASE_URL`` comes from a
``.env`` file, the key must come from that same file, otherwise :func:`read_env` refuses with a clear error.

Every failure is a :class:`LLMRequestError` with ``retryable`` set: 408/409/429, 5xx, timeouts, dropped connections
and *bad 200 replies* (not JSON, invalid JSON, an ``error`` body, no ``choices``, no message content, or content that
is empty or only whitespace) are retryable; other errors (400, 401, ...) are not. Retries happen here and only here
(the SDK's own are off, and :class:`~labkit.llm.cached.CachedChatModel` does not retry): tenacity with exponential
backoff plus jitter, or the server's ``Retry-After`` (seconds or an HTTP date, also ``retry-after-ms``) when it sends
one. Lone surrogates in a reply become U+FFFD.

Time is bounded by wall clock, not per socket read: one attempt ends after ``timeout`` seconds or at the call's
deadline, whichever comes first, however the server behaves (silent after accepting the connection, or trickling
bytes so that no single read ever times out); the call with all its retries ends by its deadline: ``deadline``
seconds (default 120 s) or an earlier :func:`~labkit.llm.base.call_deadline` of the caller (labelling's
``job_deadline_s``). Requests run on the SDK's async client in one background event loop shared by all clients
(``asyncio.wait_for`` cancels an attempt at its bound and closes its connection); ``chat`` stays a blocking call.
The API key never appears in ``repr``/``str``, logs or raised errors (messages are scrubbed of it, and the SDK's
exception is not kept as ``__cause__``/``__context__``).
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import json
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
from dotenv import dotenv_values
from tenacity import RetryCallState, Retrying, retry_if_exception

from labkit.errors import LabkitError, register_secret, scrub
from labkit.jsonl import LONE_SURROGATE
from labkit.paths import REPO_ROOT
from labkit.types import ChatResult, Message

from .base import cut_at_stop, cut_until, deadline_left

ENV_KEYS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LABKIT_API_MODEL")
NO_KEY = "not-needed"  # placeholder for local servers (llama.cpp, vLLM, Ollama) that ignore the key
RETRYABLE_STATUS = (408, 409, 429)


class LLMRequestError(LabkitError):
    """A request to an OpenAI-compatible server failed (after retries when the error was retryable).

    ``kind``: ``status`` (HTTP error), ``timeout``, ``connection``, ``bad_reply`` (a 200 that is not a usable chat
    completion), ``deadline`` (the call ran out of time) or ``config``. ``retry_after``: seconds the server asked for.
    """

    def __init__(self, message: str, status_code: int | None = None, *, kind: str = "status",
                 retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status_code, self.kind, self.retryable, self.retry_after = status_code, kind, retryable, retry_after


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, ``retry-after`` in seconds, or ``retry-after`` as HTTP date."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def dotenv_files() -> list[Path]:
    """The ``.env`` files read, in order (a later one wins): the repo root's, then the current folder's."""
    found: list[Path] = []
    for path in (REPO_ROOT / ".env", Path.cwd() / ".env"):
        if path.is_file() and path.resolve() not in {p.resolve() for p in found}:
            found.append(path)
    return found


def read_env() -> dict[str, str]:
    """``OPENAI_*``/``LABKIT_API_MODEL`` settings: process environment first, then ``.env`` files (see module doc)."""
    values: dict[str, str] = {}
    source: dict[str, str] = {}
    for path in dotenv_files():
        for k, v in dotenv_values(path, interpolate=False).items():
            if k in ENV_KEYS and v:
                values[k], source[k] = v, str(path)
    for k in ENV_KEYS:
        if os.environ.get(k):
            values[k], source[k] = os.environ[k], "the environment"
    register_secret(values.get("OPENAI_API_KEY"))
    url_from = source.get("OPENAI_BASE_URL")
    if "OPENAI_API_KEY" in values and url_from not in (None, "the environment", source["OPENAI_API_KEY"]):
        raise LabkitError(
            f"OPENAI_BASE_URL is set by {url_from} but OPENAI_API_KEY comes from {source['OPENAI_API_KEY']}: "
            "refusing to send that key to a host named by another file. Put both in the same .env file, or set "
            "OPENAI_BASE_URL in the environment as well.")
    return values


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, LLMRequestError) and exc.retryable


def _bad_reply(why: str) -> LLMRequestError:
    return LLMRequestError(f"bad reply: {why}", 200, kind="bad_reply", retryable=True)


def parse_completion(body: str) -> tuple[str, int, int]:
    """``(content, prompt_tokens, completion_tokens)`` of a chat-completion body, or a retryable bad_reply error."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _bad_reply(f"not JSON ({exc.msg} at char {exc.pos}): {body[:120]!r}") from None
    if not isinstance(data, dict):
        raise _bad_reply(f"expected a JSON object, got {type(data).__name__}")
    if data.get("error"):
        raise _bad_reply(f"error body: {str(data['error'])[:300]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _bad_reply(f"no choices ({str(choices)[:80]})")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise _bad_reply(f"no message content in choices[0] ({str(choices[0])[:200]})")
    if not content.strip():
        raise _bad_reply(f"empty message content {content!r} in choices[0] (an empty reply is not an answer)")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    return LONE_SURROGATE.sub("\ufffd", content), count("prompt_tokens"), count("completion_tokens")


_LOOP_LOCK = threading.Lock()
_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    """The background event loop every :class:`OpenAIChat` sends its requests on (one daemon thread per process,
    started on first use and again in a forked child)."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP[0] != os.getpid() or _LOOP[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="labkit-openai-loop", daemon=True).start()
            _LOOP = (os.getpid(), loop)
        return _LOOP[1]


Request = Callable[[openai.AsyncOpenAI, float], Awaitable[Any]]


class OpenAIChat:
    """Chat with any OpenAI-compatible ``/v1/chat/completions`` endpoint through the official ``openai`` SDK.

    ``requests`` / ``retries`` count HTTP attempts and retries (thread-safe) for usage reports.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        deadline: float = 120.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 20.0,
        max_retry_after: float = 60.0,
        concurrency: int = 4,
    ):
        if not api_key and not base_url:
            raise LabkitError(
                "no API configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI server, "
                "LABKIT_API_MODEL for the model) in the environment or in a .env file (see .env.example)"
            )
        self._api_key = api_key or NO_KEY
        register_secret(api_key)
        self.base_url = base_url
        self._model = model
        self.timeout, self.deadline, self.max_retries = timeout, deadline, max_retries
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.concurrency = concurrency
        self.requests = self.retries = 0
        self._lock = threading.Lock()
        self._sleep: Callable[[float], None] = time.sleep
        self._clients: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI] | None = None

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
            async def models(client: openai.AsyncOpenAI, timeout: float) -> str:
                return (await client.models.with_raw_response.list(timeout=timeout)).http_response.text

            body = self._call(models)
            try:
                models = json.loads(body).get("data") or []
                first = models[0]["id"] if models else None
            except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
                raise LLMRequestError(self._scrub(f"server {self.where} sent an unreadable model list: "
                                                  f"{body[:120]!r}"), kind="bad_reply") from None
            if not isinstance(first, str):
                raise LLMRequestError(f"server {self.where} lists no models; set LABKIT_API_MODEL", kind="config")
            self._model = first
        return self._model

    @property
    def identity(self) -> str:
        """``openai:<model>@<host>``: which model on which server answered (for caches and job ids)."""
        return f"openai:{self.name}@{self.where}"

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"

    def __repr__(self) -> str:
        key = "<unset>" if self._api_key == NO_KEY else "<set, hidden>"
        return f"OpenAIChat(model={self._model!r}, base_url={self.base_url!r}, api_key={key})"

    __str__ = __repr__

    def _scrub(self, text: str) -> str:
        return scrub(text.replace(self._api_key, "***") if self._api_key != NO_KEY else text)

    def _error(self, exc: Exception) -> LLMRequestError:
        """An SDK exception as a scrubbed :class:`LLMRequestError` (the SDK exception itself is not kept)."""
        kind_name = type(exc).__name__
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            return LLMRequestError(self._scrub(f"{kind_name} from {self.where}: {exc}"), status, kind="status",
                                   retryable=status in RETRYABLE_STATUS or status >= 500,
                                   retry_after=retry_after_seconds(exc.response.headers))
        kind = "timeout" if isinstance(exc, openai.APITimeoutError) else \
            "connection" if isinstance(exc, openai.APIConnectionError) else "bad_reply"
        return LLMRequestError(self._scrub(f"{kind_name} from {self.where}: {exc}"), kind=kind, retryable=True)

    def _client_on(self, loop: asyncio.AbstractEventLoop) -> openai.AsyncOpenAI:
        """This client's SDK client, bound to ``loop`` (its connection pool lives there)."""
        with self._lock:
            if self._clients is None or self._clients[0] is not loop:
                self._clients = (loop, openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url,
                                                          timeout=self.timeout, max_retries=0))
            return self._clients[1]

    def _run(self, request: Request, budget: float) -> Any:
        """Run one request on the background loop; it is cancelled (connection closed) after ``budget`` seconds."""
        loop = _event_loop()
        client = self._client_on(loop)
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(request(client, budget), budget), loop)
        try:
            return future.result()
        except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on, two before
            raise LLMRequestError(f"Timeout from {self.where}: no complete reply within {budget:.1f} s",
                                  kind="timeout", retryable=True) from None
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt in a notebook: the request does not run on unseen
            raise

    def _attempt(self, request: Request, ends: float) -> Any:
        """One HTTP attempt, cut at ``timeout`` or at the call's deadline ``ends`` (monotonic), whichever is first."""
        left = ends - time.monotonic()
        if left <= 0:
            raise LLMRequestError(f"no time left for a request to {self.where}", kind="deadline")
        with self._lock:
            self.requests += 1
        failure: LLMRequestError
        try:
            return self._run(request, min(self.timeout, left))
        except LLMRequestError as exc:
            failure = exc
        except openai.APIError as exc:  # a body cut short after the headers arrives as APIConnectionError too
            failure = self._error(exc)
        failure.__traceback__ = None
        raise failure  # raised outside the except block: no __context__ pointing at the unscrubbed SDK error

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, LLMRequestError) and exc.retry_after is not None:
            return exc.retry_after
        return min(self.max_backoff, self.backoff * 2 ** (state.attempt_number - 1)) + random.uniform(0, self.backoff)

    def _stop(self, state: RetryCallState, ends: float) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, LLMRequestError) and exc.retry_after is not None and exc.retry_after > self.max_retry_after:
            return True  # the server wants a longer pause than we may take: give up now, clearly
        return (state.attempt_number > self.max_retries
                or time.monotonic() + (state.upcoming_sleep or 0.0) >= ends)

    def _call(self, request: Request) -> Any:
        """Run ``request(client, timeout)`` with retries (see module doc); failures raise :class:`LLMRequestError`."""
        started = time.monotonic()
        ends, what = started + self.deadline, f"deadline {self.deadline:g} s"
        outer = deadline_left()
        if outer is not None and started + outer[0] < ends:
            ends, what = started + outer[0], outer[1]
        retrying = Retrying(retry=retry_if_exception(is_retryable), stop=lambda s: self._stop(s, ends),
                            wait=self._wait, sleep=lambda s: self._sleep(s),
                            before_sleep=lambda _: self._count_retry(), reraise=True)
        failure: LLMRequestError
        try:
            return retrying(self._attempt, request, ends)
        except LLMRequestError as exc:
            failure = exc
        spent = time.monotonic() - started
        if failure.retryable or failure.kind == "deadline":
            why = (f"server asked to retry after {failure.retry_after:.0f} s (more than max_retry_after="
                   f"{self.max_retry_after:.0f} s)" if (failure.retry_after or 0) > self.max_retry_after
                   else f"gave up after {spent:.1f} s ({what}, max_retries {self.max_retries})")
            failure.args = (f"{failure.args[0]}; {why}",)
        failure.__context__ = failure.__cause__ = None
        raise failure

    def _count_retry(self) -> None:
        with self._lock:
            self.retries += 1

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

        async def create(client: openai.AsyncOpenAI, timeout: float) -> tuple[str, int, int]:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=payload, max_tokens=max_new_tokens, temperature=temperature,
                stop=stop or None, timeout=timeout)
            return parse_completion(raw.http_response.text)

        text, prompt_tokens, completion_tokens = self._call(create)
        return ChatResult(text=cut_until(cut_at_stop(text, stop), until), model=model, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens)

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        """Send up to ``concurrency`` requests at a time; results keep the input order. Each request runs in the
        caller's context (its :func:`~labkit.llm.base.call_deadline` applies)."""
        if len(batch) <= 1 or self.concurrency <= 1:
            return [self.chat(m, **kw) for m in batch]
        contexts = [contextvars.copy_context() for _ in batch]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda cm: cm[0].run(self.chat, cm[1], **kw), zip(contexts, batch)))

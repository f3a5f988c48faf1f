"""OpenAIChat: a real `transformers serve` server, retries/backoff against a scripted local HTTP server, timeouts, secrets."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.llm import OpenAIChat, get_model
from labkit.llm.openai_client import LLMRequestError

SECRET = "sk-labkit-test-SECRET-0123456789"


def completion(text: str = "pong") -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


class Scripted:
    """A tiny local HTTP server that answers POSTs from a script of (status, body, delay_s); the last one repeats."""

    def __init__(self, script: list[tuple[int, dict, float]]):
        self.script, self.requests = script, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, reply, delay = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                time.sleep(delay)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[type[Scripted]]:
    servers: list[Scripted] = []

    def make(script: list[tuple[int, dict, float]]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield make  # type: ignore[misc]
    for s in servers:
        s.close()


def client(url: str, **kw: object) -> OpenAIChat:
    return OpenAIChat(model="fake-model", base_url=url, api_key=SECRET, backoff=0.01, max_backoff=0.05, **kw)


MSG = [{"role": "user", "content": "ping"}]


def test_retries_429_and_5xx_then_succeeds(scripted) -> None:
    srv = scripted([(429, {"error": {"message": "slow down"}}, 0), (503, {"error": {"message": "busy"}}, 0),
                    (200, completion("pong"), 0)])
    res = client(srv.url).chat(MSG, max_new_tokens=5, stop=["\n"])
    assert res.text == "pong" and res.model == "fake-model"
    assert (res.prompt_tokens, res.completion_tokens) == (11, 3)
    assert len(srv.requests) == 3
    sent = srv.requests[-1]["body"]
    assert sent["max_tokens"] == 5 and sent["stop"] == ["\n"] and sent["messages"] == MSG
    assert srv.requests[0]["auth"] == f"Bearer {SECRET}"


def test_gives_up_after_max_retries(scripted) -> None:
    srv = scripted([(500, {"error": {"message": "boom"}}, 0)])
    with pytest.raises(LLMRequestError) as info:
        client(srv.url, max_retries=2).chat(MSG)
    assert len(srv.requests) == 3 and info.value.status_code == 500


def test_client_errors_are_not_retried(scripted) -> None:
    srv = scripted([(400, {"error": {"message": "bad request"}}, 0)])
    with pytest.raises(LLMRequestError, match="bad request") as info:
        client(srv.url).chat(MSG)
    assert len(srv.requests) == 1 and info.value.status_code == 400


def test_timeout_is_retried_then_raised(scripted) -> None:
    srv = scripted([(200, completion(), 1.5)])
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match="Timeout"):
        client(srv.url, timeout=0.3, max_retries=1).chat(MSG)
    assert len(srv.requests) == 2
    assert time.monotonic() - start < 1.4


def test_key_never_shown(scripted) -> None:
    srv = scripted([(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}, 0)])
    c = client(srv.url)
    assert SECRET not in repr(c) and SECRET not in str(c)
    with pytest.raises(LLMRequestError) as info:
        c.chat(MSG)
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert SECRET not in shown and "***" in shown and len(srv.requests) == 1


def test_chat_batch_keeps_order(scripted) -> None:
    srv = scripted([(200, completion("same"), 0)])
    out = client(srv.url, concurrency=3).chat_batch([MSG] * 5)
    assert [r.text for r in out] == ["same"] * 5 and len(srv.requests) == 5


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LABKIT_API_MODEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("labkit.llm.openai_client.REPO_ROOT", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_from_env_without_config_raises_clearly(clean_env: Path) -> None:
    with pytest.raises(LabkitError, match="OPENAI_API_KEY"):
        OpenAIChat.from_env()
    with pytest.raises(LabkitError, match="OPENAI_API_KEY"):
        get_model("openai")


def test_from_env_reads_dotenv_and_env_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch, scripted) -> None:
    srv = scripted([(200, completion("from-dotenv"), 0)])
    (clean_env / ".env").write_text(f"OPENAI_API_KEY={SECRET}\nOPENAI_BASE_URL={srv.url}\nLABKIT_API_MODEL=m-dotenv\n")
    c = OpenAIChat.from_env()
    assert c.name == "m-dotenv" and c.base_url == srv.url
    monkeypatch.setenv("LABKIT_API_MODEL", "m-env")
    assert OpenAIChat.from_env().name == "m-env"
    assert get_model("openai:m-spec").name == "m-spec"
    assert OpenAIChat.from_env().chat(MSG).text == "from-dotenv"
    assert srv.requests[0]["auth"] == f"Bearer {SECRET}"


@pytest.mark.server  # seconds: `transformers serve` on the tiny Gemma-3, a real process on 127.0.0.1
def test_real_transformers_server(model_server) -> None:
    c = OpenAIChat(base_url=model_server.base_url, api_key=SECRET, timeout=120)
    assert c.name == model_server.model_id  # discovered from /v1/models
    res = c.chat([{"role": "user", "content": "The capital of France is"}], max_new_tokens=8)
    assert isinstance(res.text, str) and res.model == c.name
    assert res.prompt_tokens > 3 and 1 <= res.completion_tokens <= 8
    # the chat template the checkpoint carries is applied: the server's prompt count matches labkit's rendering
    from labkit.chat import render_chat
    from labkit.llm.local import load_tokenizer

    tok = load_tokenizer()
    expected = len(tok(tok.bos_token + render_chat([{"role": "user", "content": "The capital of France is"}]),
                       add_special_tokens=False)["input_ids"])
    assert res.prompt_tokens == expected
    batch = c.chat_batch([MSG, MSG], max_new_tokens=4)  # concurrent requests against one server
    assert [r.text for r in batch][0] == batch[1].text  # greedy: same prompt, same answer
    assert SECRET not in repr(c)

"""OpenAIChat: a real `transformers serve` server, retries/backoff against a scripted local HTTP server, timeouts, secrets."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.llm import OpenAIChat, get_model
from labkit.llm.base import call_deadline
from labkit.llm.openai_client import LLMRequestError

SECRET = "sk-labkit-test-SECRET-0123456789"


def completion(text: str = "pong") -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


class Scripted:
    """A tiny local HTTP server that answers POSTs from a script of (status, body, delay_s[, headers]); the last one
    repeats. A dict body is sent as JSON; a str/bytes body is sent as it is; header ``X-Truncate`` cuts the body short
    after announcing its full length."""

    def __init__(self, script: list[tuple]):
        self.script, self.requests = script, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, reply, delay, *extra = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                headers = dict(extra[0]) if extra else {}
                time.sleep(delay)
                data = reply.encode() if isinstance(reply, str) else reply if isinstance(reply, bytes) \
                    else json.dumps(reply).encode()
                truncate = headers.pop("X-Truncate", None)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2] if truncate else data)
                    if truncate:
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802  (/v1/models)
                data = json.dumps(outer.models).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.models: object = {"object": "list", "data": [{"id": "served-model", "object": "model"}]}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

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
    chain, exc = [], info.value  # nothing in the exception chain may keep the SDK error with the raw message
    while exc is not None and len(chain) < 10:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert chain == [info.value], [type(e).__name__ for e in chain]


def test_chat_batch_keeps_order(scripted) -> None:
    srv = scripted([(200, completion("same"), 0)])
    out = client(srv.url, concurrency=3).chat_batch([MSG] * 5)
    assert [r.text for r in out] == ["same"] * 5 and len(srv.requests) == 5


def test_bad_200_replies_are_typed_retryable_errors(scripted) -> None:
    bad = [(200, "<html>upstream broke</html>", 0, {"Content-Type": "text/html"}),
           (200, '{"choices": [{"message": {"content": "po', 0),
           (200, "not json at all", 0),
           (200, {"choices": []}, 0),
           (200, {"choices": [{"index": 0, "message": {"role": "assistant"}}]}, 0),
           (200, {"choices": [{"index": 0}]}, 0),
           (200, {"error": {"message": "overloaded"}}, 0),
           (200, [1, 2], 0),
           (200, completion("pong"), 0, {"X-Truncate": "1"})]
    srv = scripted(bad + [(200, completion("pong"), 0)])
    c = client(srv.url, max_retries=len(bad))
    assert c.chat(MSG).text == "pong"
    assert len(srv.requests) == len(bad) + 1 and c.requests == len(bad) + 1 and c.retries == len(bad)
    for reply in bad:
        srv = scripted([reply])
        with pytest.raises(LLMRequestError) as info:
            client(srv.url, max_retries=1).chat(MSG)
        assert info.value.retryable and info.value.kind in ("bad_reply", "connection"), str(info.value)
        assert len(srv.requests) == 2


def test_model_name_is_discovered_or_the_error_is_clear(scripted) -> None:
    srv = scripted([(200, completion("hi"), 0)])
    c = OpenAIChat(base_url=srv.url, api_key=SECRET)
    assert c.name == "served-model" and c.chat(MSG).model == "served-model"
    srv.models = {"object": "list", "data": []}
    with pytest.raises(LLMRequestError, match="lists no models"):
        _ = OpenAIChat(base_url=srv.url, api_key=SECRET).name
    srv.models = ["garbage"]
    with pytest.raises(LLMRequestError, match="unreadable model list"):
        _ = OpenAIChat(base_url=srv.url, api_key=SECRET).name


def test_lone_surrogate_in_a_reply_is_replaced(scripted) -> None:
    srv = scripted([(200, completion("half an emoji \ud83d here"), 0)])
    assert client(srv.url).chat(MSG).text == "half an emoji \ufffd here"


def test_retry_after_is_honoured_in_seconds_and_as_http_date(scripted) -> None:
    import email.utils

    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    srv = scripted([(429, {"error": {"message": "slow"}}, 0, {"Retry-After": "7"}),
                    (503, {"error": {"message": "busy"}}, 0, {"Retry-After": date}),
                    (429, {"error": {"message": "slow"}}, 0, {"retry-after-ms": "250"}),
                    (200, completion("ok"), 0)])
    c = client(srv.url)
    sleeps: list[float] = []
    c._sleep = sleeps.append
    assert c.chat(MSG).text == "ok"
    assert sleeps[0] == 7 and 27 <= sleeps[1] <= 30 and sleeps[2] == 0.25
    srv = scripted([(429, {"error": {"message": "come back tomorrow"}}, 0, {"Retry-After": "86400"})])
    c = client(srv.url)
    c._sleep = sleeps.append
    with pytest.raises(LLMRequestError, match="retry after 86400 s") as info:
        c.chat(MSG)
    assert len(srv.requests) == 1 and info.value.status_code == 429


def test_a_hung_server_costs_at_most_the_deadline(scripted) -> None:
    srv = scripted([(200, completion(), 5.0)])
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match="deadline") as info:
        client(srv.url, timeout=0.3, deadline=1.0, max_retries=100).chat(MSG)
    assert time.monotonic() - start < 1.8 and info.value.kind == "timeout"
    defaults = OpenAIChat(api_key=SECRET)
    assert defaults.timeout <= 30 and defaults.deadline <= 120  # not 5 x 60 s as before


def test_an_empty_or_blank_reply_is_a_retried_failure_and_never_cached(scripted, tmp_path: Path) -> None:
    from labkit.llm.cached import CachedChatModel, RequestCache

    srv = scripted([(200, completion(""), 0), (200, completion("  \n"), 0), (200, completion("pong"), 0)])
    c = client(srv.url, max_retries=3)
    assert c.chat(MSG).text == "pong" and len(srv.requests) == 3 and c.retries == 2
    srv = scripted([(200, completion(" \n\t"), 0)])
    cached = CachedChatModel(client(srv.url, max_retries=2), RequestCache(tmp_path / "c.jsonl"))
    with pytest.raises(LLMRequestError, match="empty message content") as info:
        cached.chat(MSG)
    assert info.value.kind == "bad_reply" and info.value.retryable and len(srv.requests) == 3
    assert len(cached.cache) == 0 and cached.usage.failures == 1
    srv.script = [(200, completion("fixed"), 0)]  # the teacher is fixed: the request is made again
    assert cached.chat(MSG).text == "fixed" and len(srv.requests) == 4 and len(cached.cache) == 1


class Hostile:
    """A server that never completes a reply in time: ``silent`` accepts connections (the kernel's backlog does)
    and never answers; ``trickle`` answers with a valid 200 reply one byte every ``interval`` seconds, status line
    and headers included, so that no single read ever waits long (about 18 s for the whole reply)."""

    def __init__(self, kind: str, interval: float = 0.05):
        self.requests, self.stopping = 0, threading.Event()
        outer = self
        if kind == "silent":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(64)
            port, self.server = self.sock.getsockname()[1], None
        else:
            reply = json.dumps(completion("pong")).encode()
            data = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                    % len(reply)) + reply

            class Handler(socketserver.BaseRequestHandler):
                def handle(self) -> None:
                    outer.requests += 1
                    try:
                        self.request.recv(65536)
                        for i in range(len(data)):
                            if outer.stopping.wait(interval):
                                return
                            self.request.sendall(data[i:i + 1])
                    except OSError:  # the client gave up
                        pass

            self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
            self.server.daemon_threads = True
            port = self.server.server_address[1]
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}/v1"

    def close(self) -> None:
        self.stopping.set()
        if self.server is None:
            self.sock.close()
        else:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[type[Hostile]]:
    servers: list[Hostile] = []

    def make(kind: str) -> Hostile:
        servers.append(Hostile(kind))
        return servers[-1]

    yield make  # type: ignore[misc]
    for s in servers:
        s.close()


@pytest.mark.parametrize("kind", ["silent", "trickle"])
def test_the_deadline_bounds_a_silent_or_trickling_server(hostile, kind: str) -> None:
    srv = hostile(kind)
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match=r"gave up after 1\.\d s \(deadline 1\.2 s") as info:
        client(srv.url, timeout=0.4, deadline=1.2, max_retries=50).chat(MSG)
    assert time.monotonic() - start < 2.0 and info.value.kind == "timeout" and info.value.retryable
    if kind == "trickle":  # each attempt was cut at `timeout` although every read got a byte in time
        assert srv.requests >= 2


@pytest.mark.parametrize("kind", ["silent", "trickle"])
def test_a_callers_deadline_cuts_the_call_in_flight(hostile, kind: str) -> None:
    srv = hostile(kind)
    c = client(srv.url, timeout=30, deadline=30)
    start = time.monotonic()
    with call_deadline(1.0, "job_deadline_s=1"), pytest.raises(LLMRequestError, match="job_deadline_s=1"):
        c.chat(MSG)
    with call_deadline(60), call_deadline(0.5, "inner"), pytest.raises(LLMRequestError, match="inner"):
        c.chat_batch([MSG, MSG])  # the earliest deadline wins, also in chat_batch's threads
    assert time.monotonic() - start < 2.5


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


def _get(port: int, path: str, host: str) -> tuple[int, str]:
    """GET with an exact Host header (what a browser sends after DNS rebinding)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@pytest.mark.server  # the same real `transformers serve` process as above
def test_the_local_server_checks_the_host_and_never_shows_the_model_path(model_server) -> None:
    port = model_server.port
    status, body = _get(port, "/v1/models", f"127.0.0.1:{port}")
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == [model_server.model_id] == ["tiny-gemma3"]
    assert str(model_server.model_dir) not in body and str(Path.home()) not in body
    assert _get(port, "/v1/models", f"localhost:{port}")[0] == 200
    for host in (f"evil.example:{port}", "evil.example", "127.0.0.1.nip.io", "attacker.localhost.example"):
        assert _get(port, "/v1/models", host)[0] == 400, host
        assert _get(port, "/health", host)[0] == 400, host


def test_a_parent_folders_dotenv_is_not_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch, scripted) -> None:
    evil = scripted([(200, completion("stolen"), 0)])
    (clean_env / ".env").write_text(f"OPENAI_BASE_URL={evil.url}\nOPENAI_API_KEY=sk-from-parent-dotenv-0000\n")
    child = clean_env / "project"
    child.mkdir()
    monkeypatch.chdir(child)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    c = OpenAIChat.from_env(model="m")
    assert c.base_url is None and c._api_key == SECRET and not evil.requests


def test_a_dotenv_cannot_redirect_a_key_it_did_not_supply(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                          scripted) -> None:
    evil = scripted([(200, completion("stolen"), 0)])
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    (clean_env / ".env").write_text(f"OPENAI_BASE_URL={evil.url}\n")
    with pytest.raises(LabkitError, match=r"OPENAI_BASE_URL is set by .*\.env but OPENAI_API_KEY comes from the "
                                          r"environment") as info:
        OpenAIChat.from_env(model="m").chat(MSG)
    assert not evil.requests and SECRET not in str(info.value)
    repo = clean_env / "repo"  # the repo root's .env names the host, the current folder's supplies the key
    repo.mkdir()
    (repo / ".env").write_text(f"OPENAI_BASE_URL={evil.url}\n")
    (clean_env / ".env").write_text("OPENAI_API_KEY=sk-other-file-key-000000\n")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(LabkitError, match="refusing"):
        OpenAIChat.from_env(model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", evil.url)  # the environment may name the host for any key
    assert OpenAIChat.from_env(model="m").chat(MSG).text == "stolen"


def test_known_keys_are_scrubbed_from_every_labkit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.errors import DataFileError

    OpenAIChat(base_url="http://127.0.0.1:9/v1", api_key=SECRET)
    assert SECRET not in str(DataFileError("x.jsonl", f"bad value {SECRET}", line=3))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-only-in-the-environment-42")
    assert "sk-only-in-the-environment-42" not in str(LabkitError("oops sk-only-in-the-environment-42"))


def test_the_notebooks_api_check_does_not_load_a_parent_dotenv(clean_env: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.display import api_ready

    (clean_env / ".env").write_text("OPENAI_BASE_URL=http://evil.example/v1\nOPENAI_API_KEY=sk-parent-000000000\n")
    child = clean_env / "notebooks"
    child.mkdir()
    monkeypatch.chdir(child)
    assert not api_ready() and "OPENAI_BASE_URL" not in os.environ and "OPENAI_API_KEY" not in os.environ
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert api_ready() and "OPENAI_BASE_URL" not in os.environ
    assert OpenAIChat.from_env(model="m").base_url is None

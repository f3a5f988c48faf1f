"""A local OpenAI-compatible teacher for benches and tests: 127.0.0.1 only, fixed latency, optional faults.

``POST /v1/chat/completions`` answers with labkit's sandbox emulator (``SandboxTeacher``, deterministic), so
labelling through it gives the same traces as labelling with ``get_model("sandbox")``; ``GET /v1/models`` lists one
model; ``GET /stats`` returns the request counters (and, per API key seen, a 12-hex sha256 prefix: never the key). Every chat request waits ``latency`` seconds first.

With ``fault_rate`` > 0 that share of chat requests fails, the kind drawn evenly (seeded) from ``faults``:

* ``429``        — Too Many Requests with ``Retry-After`` (``retry-after-ms`` for short waits);
* ``500``        — an internal server error;
* ``timeout``    — the reply comes only after ``hang`` seconds (longer than the client waits);
* ``truncated``  — a 200 whose body stops halfway (``Content-Length`` promises more);
* ``non_json``   — a 200 HTML error page;
* ``empty``      — a 200 chat completion with an empty ``choices`` list;
* ``surrogate``  — a 200 whose content ends in a lone surrogate (``\\ud83d``, half an emoji); the reply is usable;
* ``blank``      — a 200 chat completion whose content is empty or whitespace only (opt-in: not in the default mix,
  name it in ``faults``).

Run ``python bench/fake_teacher.py --latency 0.5 --fault-rate 0.3``; it prints ``READY <base_url>`` when serving.
:func:`start` does that in a child process and returns ``(process, base_url)``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FAULTS = ("429", "500", "timeout", "truncated", "non_json", "empty", "surrogate")
OPT_IN_FAULTS = ("blank",)
MODEL = "sandbox-teacher"


class TeacherServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, port: int = 0, *, latency: float = 0.0, fault_rate: float = 0.0,
                 faults: tuple[str, ...] = FAULTS, hang: float = 2.0, retry_after_ms: int = 50, seed: int = 0):
        from labkit.llm import SandboxTeacher

        unknown = set(faults) - set(FAULTS + OPT_IN_FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS + OPT_IN_FAULTS}")
        self.teacher = SandboxTeacher()
        self.latency, self.fault_rate, self.faults, self.hang = latency, fault_rate, tuple(faults), hang
        self.retry_after_ms = retry_after_ms
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"chat": 0, "ok": 0, **{f: 0 for f in FAULTS + OPT_IN_FAULTS}}
        self.keys: dict[str, int] = {}  # sha256(api key)[:12] -> requests (never the key itself)
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) or a connection cut on purpose is not an error worth a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def draw(self, authorization: str | None) -> str:
        """Count one chat request (and which key it carried, as a short hash) and pick its fault."""
        with self.lock:
            self.counts["chat"] += 1
            if authorization:
                digest = hashlib.sha256(authorization.removeprefix("Bearer ").encode()).hexdigest()[:12]
                self.keys[digest] = self.keys.get(digest, 0) + 1
            kind = self.rng.choice(self.faults) if self.faults and self.rng.random() < self.fault_rate else "ok"
            self.counts[kind] += 1
        return kind


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall per reply)
    server: TeacherServer

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, *, content_type: str = "application/json",
              headers: dict[str, str] | None = None, cut: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if cut:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "labkit-bench"}]}
        elif self.path.rstrip("/").endswith("/stats"):
            with self.server.lock:
                body = {**self.server.counts, "key_sha256_12": dict(self.server.keys)}
        else:
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        self._send(200, json.dumps(body).encode())

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        srv = self.server
        if not isinstance(request.get("messages"), list):  # e.g. a client killed after sending the headers
            self._send(400, b'{"error": {"message": "no messages"}}')
            return
        kind = srv.draw(self.headers.get("Authorization"))
        time.sleep(srv.latency)
        if kind == "429":
            wait = {"retry-after-ms": str(srv.retry_after_ms)} if srv.retry_after_ms < 1000 else \
                {"Retry-After": str(srv.retry_after_ms // 1000)}
            self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}', headers=wait)
            return
        if kind == "500":
            self._send(500, b'{"error": {"message": "internal error"}}')
            return
        if kind == "non_json":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            return
        if kind == "empty":
            self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
            return
        if kind == "timeout":
            time.sleep(srv.hang)
        result = srv.teacher.chat(request["messages"], max_new_tokens=int(request.get("max_tokens") or 256),
                                  stop=request.get("stop"))
        text = result.text + ("\ud83d" if kind == "surrogate" else "")
        if kind == "blank":
            text = ("", " ", "\n", "  \n\t")[srv.counts["blank"] % 4]
        body = {"id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                          "total_tokens": result.prompt_tokens + result.completion_tokens}}
        self._send(200, json.dumps(body).encode(), cut=kind == "truncated")  # ensure_ascii: \ud83d stays an escape


def start(*, latency: float = 0.0, fault_rate: float = 0.0, faults: tuple[str, ...] = FAULTS, hang: float = 2.0,
          retry_after_ms: int = 50, seed: int = 0, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the server in a child process (its own CPU and GIL); returns ``(process, base_url)``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency), "--fault-rate", str(fault_rate),
           "--faults", ",".join(faults), "--hang", str(hang), "--retry-after-ms", str(retry_after_ms),
           "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"fake teacher did not start: {line!r}")
    return proc, line.split()[1]


def stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=5) as resp:
        return json.loads(resp.read())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--hang", type=float, default=2.0)
    ap.add_argument("--retry-after-ms", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    server = TeacherServer(a.port, latency=a.latency, fault_rate=a.fault_rate,
                           faults=tuple(f for f in a.faults.split(",") if f), hang=a.hang,
                           retry_after_ms=a.retry_after_ms, seed=a.seed)
    print(f"READY {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()

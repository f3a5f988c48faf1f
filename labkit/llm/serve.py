"""Serve a local checkpoint behind an OpenAI-compatible endpoint with ``transformers serve`` (on 127.0.0.1 only).

The kit's one way to put a model behind ``/v1/chat/completions``: the tests start it on the tiny model, notebook 02
starts it on the tuned student and drives the plan loop through :class:`~labkit.llm.OpenAIChat`, exactly as it would
drive a hosted API. ``transformers serve`` ships with transformers (extra ``transformers[serving]``: FastAPI + uvicorn),
installs from wheels and applies the checkpoint's own chat template (labkit saves its template with every model).

```python
with LocalServer("runs/train/course") as srv:          # starts the process, waits until /health answers
    model = OpenAIChat(base_url=srv.base_url, model=srv.model_id)
    run_plan(model, "北京明天天气怎么样？")
```

The server is a child process in its own process group; :meth:`LocalServer.stop` (or leaving the ``with`` block)
terminates the whole group, so no server outlives its notebook or test. Its output goes to ``log_path``.
The process is :mod:`labkit.llm.serve_child`: ``transformers serve`` answering only requests whose ``Host`` is
``127.0.0.1`` or ``localhost`` (DNS rebinding: a web page cannot talk to it), with the model under a short id
(:func:`short_id`; ``/v1/models`` never shows the checkpoint's absolute path).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

from .local import resolve_model_dir

HOST = "127.0.0.1"
CHILD = Path(__file__).with_name("serve_child.py")


def short_id(model_dir: str | Path) -> str:
    """The name a served model goes by: its folder's name, reduced to letters, digits, ``.``, ``_`` and ``-``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_dir).name).strip(".-")
    return name or "model"


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``transformers serve <dir>`` as a managed child process on ``127.0.0.1:<port>``.

    ``model_id`` is the name the server knows the model by (:func:`short_id` of its folder, not its path); pass it as
    ``model=`` to the client.
    Startup waits for ``GET /health`` (default up to 240 s: loading a 270M model on a busy 2-core CPU takes seconds to
    a minute); if the process exits or the deadline passes, :class:`LabkitError` shows the end of its log.
    """

    def __init__(self, model: str | Path, *, port: int | None = None, device: str = "cpu", dtype: str = "auto",
                 startup_timeout: float = 240.0, log_path: str | Path | None = None):
        self.model_dir = resolve_model_dir(model).resolve()
        self.model_id = short_id(self.model_dir)
        self.workdir: Path | None = None  # private folder: a link named model_id -> model_dir (while running)
        self.port = port or free_port()
        self.device, self.dtype, self.startup_timeout = device, dtype, startup_timeout
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="labkit-serve-")) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, str(CHILD), "--workdir", str(self.workdir), "--model-id", self.model_id,
                "--host", HOST, "--port", str(self.port), "--device", self.device, "--dtype", self.dtype,
                "--log-level", "warning"]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalServer({self.model_id!r}, base_url={self.base_url!r}, {state})"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def start(self) -> "LocalServer":
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="labkit-serve-"))
        (self.workdir / self.model_id).symlink_to(self.model_dir, target_is_directory=True)
        # offline: the model is a local directory; never let the hub client reach out
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise LabkitError(f"transformers serve exited with code {code} before answering; log "
                                  f"{self.log_path}:\n{self._log_tail()}")
            if self._healthy():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise LabkitError(f"transformers serve did not answer /health within {self.startup_timeout:.0f} s; "
                                  f"log {self.log_path}:\n{self._log_tail()}")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the server's whole process group (SIGTERM, then SIGKILL after ``timeout`` s)."""
        proc, self.proc = self.proc, None
        workdir, self.workdir = self.workdir, None
        try:
            self._terminate(proc, timeout)
        finally:
            if workdir is not None:  # the link only (never what it points to), then the empty folder
                (workdir / self.model_id).unlink(missing_ok=True)
                shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:  # a forgotten server must not outlive its owner
        try:
            self.stop(timeout=2.0)
        except Exception:
            pass

"""The process :class:`labkit.llm.serve.LocalServer` starts: ``transformers serve`` with two safeguards it lacks.

* **Host check** (DNS rebinding): a web page cannot reach a server on 127.0.0.1 by its own name, only by a name
  that *resolves* to 127.0.0.1; the browser then sends that name as ``Host``. Only requests whose ``Host`` is
  ``127.0.0.1`` or ``localhost`` (any port) are answered; any other gets 400 (Starlette's
  ``TrustedHostMiddleware``, added to the app ``transformers serve`` builds).
* **A short model id**: the model is served under ``--model-id`` (a link of that name to the checkpoint in the
  private ``--workdir``, which becomes the current folder), so ``/v1/models`` and every reply name that id, never
  the checkpoint's absolute path (user name, folder layout).

Run by path (``python .../serve_child.py``), it imports no labkit module: the server process needs only
transformers and its serving extras.
"""

from __future__ import annotations

import argparse
import os

ALLOWED_HOSTS = ("127.0.0.1", "localhost")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="private folder holding a link <model-id> -> the checkpoint")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--log-level", default="warning")
    a = ap.parse_args(argv)
    os.chdir(a.workdir)  # `<model-id>` is now an existing local path: transformers serve loads it as one

    import transformers.cli.serving.server as server
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from transformers.cli.serve import Serve

    build = server.build_server

    def build_with_host_check(*args: object, **kw: object) -> object:
        app = build(*args, **kw)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(ALLOWED_HOSTS))
        return app

    server.build_server = build_with_host_check  # Serve.run imports it from the module when it starts
    Serve(force_model=a.model_id, host=a.host, port=a.port, device=a.device, dtype=a.dtype, log_level=a.log_level)


if __name__ == "__main__":
    main()

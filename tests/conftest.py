"""Shared fixtures. ``model_server``: a real ``transformers serve`` OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from labkit.llm.serve import LocalServer


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``transformers serve`` on the tiny Gemma-3 (real process, real HTTP on 127.0.0.1); session scope."""
    from labkit.llm.serve import LocalServer

    with LocalServer("tiny", log_path=tmp_path_factory.mktemp("model_server") / "server.log") as server:
        yield server

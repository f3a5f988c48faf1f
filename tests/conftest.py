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


@pytest.fixture(autouse=True)
def _template_dirs_restored() -> Iterator[None]:
    """add_template_dir() is process-wide (the Meta-Agent registers its kept templates): each test starts and ends
    with the built-in template folders only, so one test's generated templates never leak into another's."""
    from labkit import templates

    saved = list(templates._extra_dirs)
    yield
    templates._extra_dirs[:] = saved

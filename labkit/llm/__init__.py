"""L2 — chat models behind one protocol: API teachers, the local student, and the emulated sandbox teacher.

Heavy backends load lazily: ``from labkit.llm import SandboxTeacher`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import ChatModel, model_id, supports_guides
from .factory import get_model

if TYPE_CHECKING:
    from .cached import CachedChatModel, RequestCache, Usage
    from .local import LocalHFModel, ensure_gemma, load_tokenizer, resolve_device
    from .openai_client import LLMRequestError, OpenAIChat
    from .reader import SandboxReader
    from .sandbox import SandboxTeacher

_LAZY = {
    "CachedChatModel": "cached", "RequestCache": "cached", "Usage": "cached",
    "OpenAIChat": "openai_client", "LLMRequestError": "openai_client",
    "LocalHFModel": "local", "ensure_gemma": "local", "load_tokenizer": "local", "resolve_device": "local",
    "SandboxTeacher": "sandbox", "SandboxReader": "reader",
}

__all__ = ["ChatModel", "get_model", "model_id", "supports_guides", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

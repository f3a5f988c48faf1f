"""``get_model(spec)``: one string names any model the kit can use."""

from __future__ import annotations

from pathlib import Path

from labkit.errors import LabkitError, UnknownNameError

from .base import ChatModel

SPECS = ["sandbox", "sandbox:noise=<0..1>,seed=<int>", "sandbox-reader", "sandbox-reader:seed=<int>", "gemma-3-270m", "gemma", "tiny", "openai",
         "openai:<model>", "<checkpoint dir>"]


def _sandbox(options: str) -> ChatModel:
    from .sandbox import SandboxTeacher

    kw: dict[str, float | int] = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("noise", "seed"):
            raise LabkitError(f"bad sandbox option {item!r}; expected e.g. 'sandbox:noise=0.2,seed=1'")
        try:
            kw[key] = float(value) if key == "noise" else int(value)
        except ValueError:
            raise LabkitError(f"bad sandbox option {item!r}: {value!r} is not a number") from None
    return SandboxTeacher(**kw)  # type: ignore[arg-type]


def get_model(spec: str, *, device: str | None = None) -> ChatModel:
    """``"sandbox"``, ``"sandbox:noise=0.2,seed=1"``, ``"gemma-3-270m"``/``"gemma"``, ``"tiny"``, ``"openai"``,
    ``"openai:<model>"`` or a checkpoint directory. Unknown -> :class:`UnknownNameError` listing the choices.
    ``device`` (local models only): "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps"."""
    head, _, rest = spec.partition(":")
    if head == "sandbox":
        return _sandbox(rest)
    if head == "sandbox-reader":  # the prompt-sensitive emulator the offline Meta-Agent judge runs
        from .reader import SandboxReader

        seed = rest.removeprefix("seed=")
        if rest and (not rest.startswith("seed=") or not seed.isdigit()):
            raise LabkitError(f"bad sandbox-reader option {rest!r}; expected e.g. 'sandbox-reader:seed=1'")
        return SandboxReader(seed=int(seed) if rest else 0)
    if head == "openai":
        from .openai_client import OpenAIChat

        return OpenAIChat.from_env(model=rest or None)
    if spec in ("gemma-3-270m", "gemma", "tiny") or (Path(spec).expanduser() / "config.json").is_file():
        from .local import LocalHFModel

        return LocalHFModel(spec, device=device)
    raise UnknownNameError("model", spec, SPECS)

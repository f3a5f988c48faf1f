"""Our chat format for the base student model.

google/gemma-3-270m is a *base* model: it ships no chat template. We use Gemma's own turn tokens
(``<start_of_turn>`` / ``<end_of_turn>``, single tokens in its vocabulary) as clear turn markers, so the tuned model
learns where the prompt ends and where its answer must stop. A system message is folded into the first user turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.types import Message

START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
ROLE_NAMES = {"user": "user", "assistant": "model"}

# Jinja2 chat template stored with every tokenizer labkit saves (same text as render_chat produces).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set ns = namespace(system='') %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
    "{% else %}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else 'user') + '\n' }}"
    "{% if m['role'] == 'user' %}{{ ns.system }}{% set ns.system = '' %}{% endif %}"
    "{{ m['content'] + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def turn_prefix(role: str) -> str:
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown chat role {role!r}; expected one of {sorted(ROLE_NAMES)} or 'system'")
    return f"{START_OF_TURN}{ROLE_NAMES[role]}\n"


def render_turns(messages: Sequence[Message]) -> list[tuple[str, str, bool]]:
    """Split a conversation into ``(role, text, supervised)`` pieces whose concatenation is the rendered chat.

    The assistant's ``<end_of_turn>`` belongs to the supervised piece (the model must learn to stop); the turn
    prefix ``<start_of_turn>model\\n`` does not (it is given at inference time). ``bos`` is not included.
    """
    pieces: list[tuple[str, str, bool]] = []
    system = ""
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            system += content + "\n\n"
            continue
        pieces.append((role, turn_prefix(role), False))
        if role == "user":
            content, system = system + content, ""
        supervised = bool(m.get("loss", role == "assistant"))
        pieces.append((role, content + END_OF_TURN, supervised))
        pieces.append((role, "\n", False))
    return pieces


def render_chat(messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
    """Render messages to the exact text the student sees (without the leading ``<bos>``)."""
    text = "".join(piece for _, piece, _ in render_turns(messages))
    if add_generation_prompt:
        text += turn_prefix("assistant")
    return text

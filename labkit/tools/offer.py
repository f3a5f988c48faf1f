"""Which tools a prompt offers: the gold tools plus a few seeded distractors (tool subsets, as ToolBench does).

One rule for every prompt the kit builds — training samples (labkit.data), benchmark records and end-to-end agent
runs (labkit.evaluate) — so the model is tested on the kind of tool list it was trained on. Offering every tool
would make each prompt hundreds of tokens longer and the choice unlike KAgentBench's (8.7 tools per query on
average); offering only the gold tools would make the choice trivial.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from labkit.tools.registry import ToolRegistry

FINISH_TOOL = "task_complete"
DISTRACTORS = (2, 3)  # how many non-gold tools, drawn uniformly from this range


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def offer_tools(gold: Iterable[str], key: str, registry: ToolRegistry, *, seed: int = 0,
                distractors: tuple[int, int] = DISTRACTORS, finish: bool = True) -> list[str]:
    """Gold tools (in no telling order) + ``distractors`` others drawn for ``key`` (reproducible), + task_complete.

    ``key`` identifies the prompt (a labelling job id, a query id), so the same prompt always offers the same tools.
    """
    gold_names = [n for n in dict.fromkeys(gold) if n != FINISH_TOOL and n in registry]
    rng = _rng(seed, key)
    others = [n for n in registry.names() if n not in gold_names and n != FINISH_TOOL]
    names = gold_names + rng.sample(others, min(len(others), rng.randint(*distractors)))
    rng.shuffle(names)
    if finish and FINISH_TOOL in registry:
        names.append(FINISH_TOOL)
    return names

"""labkit — the Agent-Tuning lab kit.

Core modules (no stage imports): ``types``, ``paths``, ``errors``, ``jsonl``, ``tools``, ``templates``,
``parsing``, ``llm``, ``agent``. Stage packages build on them: ``data``, ``train``, ``evaluate``.
"""

__version__ = "0.1.0"

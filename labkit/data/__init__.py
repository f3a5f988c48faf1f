"""Training-data construction (course note §3.2 and §4.3): query bank -> teacher labelling -> filters -> human
review -> dedup / anonymisation -> splits without leakage -> Agent:General mix -> export and format converters.

Public names are imported lazily so that, e.g., the converters work without loading the agent stack.
``anonymize`` and ``mix`` share their module's name: import them as ``from labkit.data.anonymize import anonymize``
and ``from labkit.data.mix import mix``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "build_dataset": "pipeline", "BuildResult": "pipeline", "data_settings": "pipeline", "step_samples": "samples",
    "split_query_bank": "pipeline", "QuerySelection": "pipeline", "mode_jobs": "pipeline", "TemplateSplit": "pipeline",
    "agent_samples": "samples", "anonymize_samples": "samples", "dedup_samples": "samples",
    "split_general": "pipeline", "choose_templates": "pipeline", "LEVER_DEFAULTS": "pipeline",
    "balance_steps": "balance", "step_action": "balance", "step_action_table": "balance",
    "load_queries": "queries", "load_general": "queries",
    "LabelJob": "label", "plan_jobs": "label", "label_jobs": "label", "load_labelled": "label",
    "load_failures": "label",
    "check_record": "filters", "filter_records": "filters", "rejection_table": "filters", "REASONS": "filters",
    "Verdict": "filters",
    "Reviewer": "review", "record_decision": "review", "load_decisions": "review", "apply_decisions": "review",
    "deduplicate": "dedup", "NearDupIndex": "dedup", "NEAR_DUP_THRESHOLD": "dedup",
    "detect_pii": "anonymize", "evaluate_pii": "anonymize",
    "split_queries": "split", "split_templates": "split", "leakage_report": "split",
    "held_out_format_check": "split",
    "write_training_set": "export", "read_training_set": "export", "to_hf_dataset": "export",
    "to_format": "convert", "from_format": "convert", "read_format": "convert", "convert_file": "convert",
    "FORMATS": "convert",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'labkit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"labkit.data.{_LAZY[name]}"), name)


__all__ = sorted(_LAZY)

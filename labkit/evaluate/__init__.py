"""Evaluation stage: KAgentBench-style benchmark, scorer, cached runner, report and human annotation."""

from labkit.evaluate.benchmark import (
           TEMPLATE_GROUPS,
           benchmark_stats,
           build_benchmark,
           format_benchmark,
           load_benchmark,
           read_split,
           read_template_groups,
)
from labkit.evaluate.differences import DIFFERENCES, ScoringOptions, differences_frame
from labkit.evaluate.human import (
           Annotator,
           agreement,
           cohen_kappa,
           load_labels,
           usable_rate,
)
from labkit.evaluate.rouge import bleu, rouge_l, tokenize
from labkit.evaluate.runner import (
           agent_success,
           check_trace,
           evaluate_model,
           generate_predictions,
)
from labkit.evaluate.scorer import (
           DIMENSIONS,
           WEIGHTS,
           ScoreReport,
           compare_modes,
           difference_effects,
           overall,
           score_files,
           score_predictions,
)

__all__ = ["DIFFERENCES", "DIMENSIONS", "TEMPLATE_GROUPS", "WEIGHTS", "Annotator", "ScoreReport", "ScoringOptions",
           "agent_success", "agreement", "benchmark_stats", "bleu", "build_benchmark", "check_trace", "cohen_kappa",
           "compare_modes", "difference_effects", "differences_frame", "evaluate_model", "format_benchmark",
           "generate_predictions", "load_benchmark", "load_labels", "overall", "read_split", "read_template_groups",
           "rouge_l", "score_files", "score_predictions", "tokenize", "usable_rate"]

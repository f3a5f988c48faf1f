"""Before/after summary of planning outputs: valid-format rate and tool-name exact match per model.

Reads the KAgentBench-layout predictions that ``labkit.evaluate.evaluate_model`` wrote (e.g. runs/eval/course/<model>/
predictions.jsonl) and prints, for planning / tool-use / reflection records, how many outputs parse in their
template's format and how many name a gold tool, split by seen / unseen template.

    python bench/format_em.py runs/eval/course/base/predictions.jsonl runs/eval/course/tuned/predictions.jsonl
"""

from __future__ import annotations

import sys
from collections import defaultdict

from labkit.evaluate.scorer import load_predictions, output_format_of
from labkit.parsing import parse_output
from labkit.types import ParsedAction


def summarise(path: str) -> dict[str, tuple[int, int, int]]:
    """tag -> (outputs, valid format, tool-name EM against any gold item)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for rec in load_predictions(path):
        if rec["type"] not in ("plantooluse", "reflextion"):
            continue
        gold_tools = {g["tool_name"] for g in rec["golden_result_list"] if g.get("tool_name") not in (None, "None")}
        for template, text in rec["model_predict"].items():
            parsed = parse_output(text, output_format_of(rec, template), rec.get("funcs"))
            name = parsed.call.name if isinstance(parsed, ParsedAction) and parsed.call else (
                "task_complete" if isinstance(parsed, ParsedAction) and parsed.final_answer is not None else None)
            for tag in ("all", rec.get("template_tags", {}).get(template, "seen")):
                c = counts[tag]
                c[0] += 1
                c[1] += isinstance(parsed, ParsedAction)
                c[2] += name in gold_tools
    return {k: tuple(v) for k, v in counts.items()}


def main(paths: list[str]) -> None:
    print(f"{'predictions':60} {'part':7} {'n':>4} {'valid format':>13} {'tool-name EM':>13}")
    for path in paths:
        for tag, (n, ok, em) in sorted(summarise(path).items()):
            print(f"{path:60} {tag:7} {n:4d} {ok / n:13.1%} {em / n:13.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])

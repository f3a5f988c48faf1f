"""``python -m labkit.data --mode course --out DIR [--template-dir DIR] [--set key=value ...]``: build one training set.

The same :func:`labkit.data.build_dataset` that notebook 03 ends with; ``--set`` overrides a key of the mode's
``data`` section for this build (values read as YAML: ``--set step_balance=1.0``, ``--set meta_templates=0``,
``--set "held_out_formats=[]"``), ``--template-dir`` gives the Meta-Agent's kept templates (notebook 04 writes
them to runs/meta/<mode>/templates). Teacher answers are cached in DIR/labelling/, so a build that shares DIR with
an earlier one labels only the new jobs. Prints the lever statistics (templates, samples, tokens, the step index x
action table); everything else is in DIR/stats.json. Exit codes: 0 built, 2 bad settings or data.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from labkit.errors import LabkitError
from labkit.modes import parse_overrides


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m labkit.data", description=__doc__.split("\n")[0])
    ap.add_argument("--mode", default="smoke", help="configs/<mode>.yaml (smoke | course | a YAML path)")
    ap.add_argument("--out", default=None, help="output folder (default: runs/data/<mode>)")
    ap.add_argument("--template-dir", action="append", default=[], help="folder of Meta-Agent kept templates")
    ap.add_argument("--teacher", default="sandbox:noise=0.15", help="teacher model spec (labkit.llm.get_model)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a data setting")
    ap.add_argument("--workers", type=int, default=2)
    return ap.parse_args(argv)


def lever_summary(stats: dict) -> str:
    """The numbers that tell the data levers apart, as text."""
    groups, samples = stats.get("template_groups", {}), stats["samples"]
    tok = stats.get("tokens_by_source", {})
    lines = [f"levers: {stats.get('levers')}",
             "templates: " + ", ".join(f"{g} {len(v)}" for g, v in groups.items()),
             f"meta templates labelled in {stats['meta_templates']['jobs']} of {stats['meta_templates']['of_jobs']} "
             f"jobs; held-out format templates: {stats['meta_templates']['held_out_format']}",
             f"samples: agent {samples['agent']} ({samples['agent_unique']} unique + {samples['step_balance_copies']} "
             f"step-balance copies), general {samples['general']}, total {samples['total']}",
             *(f"tokens per {src} sample: {t}" for src, t in tok.items()),
             "templates of held-out format families in training: "
             f"{stats['held_out_format_check']['templates_in_held_out_families']}"]
    for when in ("before", "after"):
        table = pd.DataFrame(stats["step_actions"][when]).T
        lines += [f"step index x action ({when} step balance):", table.to_string()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from labkit.data.pipeline import build_dataset

    try:
        result = build_dataset(args.mode, args.out, teacher=args.teacher, workers=args.workers, progress=False,
                               template_dirs=args.template_dir or None, overrides=parse_overrides(args.set))
    except LabkitError as exc:
        print(f"labkit.data: {exc}", file=sys.stderr)
        return 2
    print(lever_summary(result.stats))
    print(f"written: {result.out_dir} ({result.stats['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One template vs the Meta-Agent-diverse set: same training budget, scored on held-out output formats.

    python bench/meta_diversity.py --mode smoke                      # tiny random model, ~1 minute (plumbing check)
    nice -n 10 python bench/meta_diversity.py --mode course --seeds 0 1 2        # the real comparison (hours on 2 CPUs)
    python bench/meta_diversity.py --mode course --train-mode course --set max_steps=200 --set lr=3e-5 --seeds 0

``--mode`` picks the data and eval sections of configs/<mode>.yaml, ``--train-mode`` the training recipe
(default: the same mode), ``--set key=value`` overrides any TrainSettings field for both arms alike. Prints the table
(step score = (0.25 Planning + 0.35 Tool-use) / 0.6 against gold, x100, with a 95 % bootstrap interval over
queries; "diverse - single" is the paired difference) and writes results.json / answers.csv / table.txt under
--out (default runs/bench/meta_diversity/<mode>). See bench/README.md and labkit/meta/compare.py.
"""

from __future__ import annotations

import argparse
import sys

from labkit.errors import LabkitError
from labkit.meta.compare import run_comparison
from labkit.modes import parse_overrides


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", default="smoke", help="configs/<mode>.yaml for data + eval (smoke | course)")
    ap.add_argument("--train-mode", default=None, help="configs/<mode>.yaml for training (default: --mode)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per arm")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainSettings override, both arms")
    ap.add_argument("--n-test-queries", type=int, default=None, help="held-out queries (default: eval.n_queries)")
    ap.add_argument("--templates-per-record", type=int, default=2, help="test templates rendered per record")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: eval.max_new_tokens of the mode")
    ap.add_argument("--with-base", action="store_true", help="also score the untuned base model")
    ap.add_argument("--out", default=None, help="output folder (default runs/bench/meta_diversity/<mode>)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        overrides = parse_overrides(args.set)
    except LabkitError as exc:
        raise SystemExit(str(exc)) from None
    comp = run_comparison(args.mode, train_mode=args.train_mode, seeds=args.seeds, out_dir=args.out,
                          train_overrides=overrides, n_test_queries=args.n_test_queries,
                          templates_per_record=args.templates_per_record, max_new_tokens=args.max_new_tokens,
                          with_base=args.with_base)
    print(f"held-out formats: {', '.join(comp.split.unseen_format)}")
    print(f"data: {comp.data}\ntraining: {comp.train}\n")
    print(comp.to_text())
    print(f"\nwritten: {comp.out_dir}/results.json, answers.csv, table.txt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

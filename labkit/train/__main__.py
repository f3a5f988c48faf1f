"""``python -m labkit.train [--config x.yaml] [--key value ...]``: run or resume one SFT job.

Exit codes: 0 finished, 2 bad configuration or data, 75 preempted (checkpoint saved; rerun to resume).
"""

from __future__ import annotations

import sys

from labkit.errors import LabkitError
from labkit.train.config import TrainSettings
from labkit.train.trainer import train

EXIT_PREEMPTED = 75


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("keys:", ", ".join(TrainSettings.field_names()))
        return 0
    try:
        config = TrainSettings.from_cli(argv)
    except LabkitError as exc:
        print(f"labkit.train: {exc}", file=sys.stderr)
        return 2
    try:
        result = train(config)
    except LabkitError as exc:  # bad data, or an output_dir that belongs to another model: nothing to requeue
        print(f"labkit.train: {exc}", file=sys.stderr)
        return 2
    if result.resumed_from:
        print(f"labkit.train: resumed from {result.resumed_from}", flush=True)
    if result.preempted:
        print(f"labkit.train: preempted at step {result.global_step}; checkpoint in {result.output_dir}", flush=True)
        return EXIT_PREEMPTED
    print(f"labkit.train: finished at step {result.global_step}; {result.s_per_step:.3f} s/step, "
          f"{result.tokens_per_s:.1f} tokens/s; model saved in {result.output_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the loss study: losses x hyperparameters x seeds x datasets, one JSON record per finished run.

    python scripts/compare_losses.py configs/study/*.yaml --dry-run
    python scripts/compare_losses.py configs/study/01_sweep_wnut17.yaml --max-runs 4

Runs happen in this process through the code path of `train_ner.py`. A rerun skips finished
records, so an interrupted study resumes; configs run in the order given (the sweep before the
configs that take its winners with `from_sweep: best`). See `ner_imbalance.study.runner`.
"""

from __future__ import annotations

import argparse
import logging
import sys

import transformers

from ner_imbalance.study.grid import StudyConfigError
from ner_imbalance.study.records import DEFAULT_RESULTS_DIR
from ner_imbalance.study.runner import DEFAULT_CHECKPOINT_ROOT, describe_plan, run_configs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="Study configs (configs/study/*.yaml), run in this order.")
    parser.add_argument(
        "--dry-run", action="store_true", help="List each run as done or todo, and the totals; train nothing."
    )
    parser.add_argument("--only-dataset", default=None, help="Run only the grid cells of this dataset.")
    parser.add_argument("--max-runs", type=int, default=None, help="Stop after N newly finished runs.")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR), help="Where the run records go.")
    parser.add_argument(
        "--checkpoint-root", default=str(DEFAULT_CHECKPOINT_ROOT), help="Scratch folder of the runs' models."
    )
    parser.add_argument(
        "--keep-models", action="store_true", help="Keep each run's model folder instead of deleting it."
    )
    parser.add_argument("--fail-fast", action="store_true", help="Stop at the first failing run instead of going on.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    try:
        if args.dry_run:
            print("\n".join(describe_plan(args.configs, args.results_dir, args.only_dataset)))
            return 0
        summary = run_configs(
            args.configs,
            args.results_dir,
            only_dataset=args.only_dataset,
            max_runs=args.max_runs,
            checkpoint_root=args.checkpoint_root,
            keep_models=args.keep_models,
            fail_fast=args.fail_fast,
        )
    except StudyConfigError as error:
        print(f"compare_losses.py: error: {error}", file=sys.stderr)
        return 2
    print(
        f"finished {len(summary.finished)}, already done {len(summary.skipped)}, failed {len(summary.failed)}, "
        f"not started {len(summary.not_started)}, configs waiting for the sweep {len(summary.blocked)}"
    )
    for run_id in summary.failed:
        print(f"failed: {run_id} (see {args.results_dir}/{run_id}.error.txt)")
    for reason in summary.blocked:
        print(f"waiting: {reason}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())

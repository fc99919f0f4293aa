"""The study's command lines: `scripts/compare_losses.py` runs the grid, `scripts/report_results.py` the report.

Flags are spelled with underscores, as transformers' and the library's commands spell theirs; the
hyphen spelling of each (`--dry-run`) stays accepted as an alias. A bad config is one error line
naming the file, exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import transformers

from ner_imbalance.study.derived_cache import DEFAULT_CACHE_DIR
from ner_imbalance.study.grid import StudyConfigError
from ner_imbalance.study.records import DEFAULT_RESULTS_DIR, MissingDevOutputsError
from ner_imbalance.study.report import write_report
from ner_imbalance.study.runner import DEFAULT_CHECKPOINT_ROOT, describe_plan, run_configs

STUDY_CONFIGS = Path("configs/study")


def _flag(parser: argparse.ArgumentParser, name: str, **options) -> None:
    """Add `--name` (underscores) with its hyphen spelling as an alias."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, **options)


def compare_losses_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the loss study: losses x hyperparameters x seeds x datasets, one JSON record per run."
    )
    parser.add_argument("configs", nargs="+", help="Study configs (configs/study/*.yaml), run in this order.")
    _flag(parser, "dry_run", action="store_true", help="List each run as done or todo, and the totals; train nothing.")
    _flag(parser, "only_dataset", default=None, help="Run only the grid cells of this dataset.")
    _flag(parser, "max_runs", type=int, default=None, help="Stop after N newly finished runs.")
    _flag(parser, "results_dir", default=str(DEFAULT_RESULTS_DIR), help="Where the run records go.")
    _flag(parser, "checkpoint_root", default=str(DEFAULT_CHECKPOINT_ROOT), help="Scratch folder of the runs' models.")
    _flag(parser, "keep_models", action="store_true", help="Keep each run's model folder instead of deleting it.")
    _flag(parser, "fail_fast", action="store_true", help="Stop at the first failing run instead of going on.")
    return parser.parse_args(argv)


def compare_losses(argv: list[str] | None = None) -> int:
    """`scripts/compare_losses.py`: 0 when every run finished, 1 when one failed, 2 on a bad config."""
    args = compare_losses_arguments(argv)
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


def report_results_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Aggregate the loss study's run records into docs/results.md, docs/results.json and plots."
    )
    parser.add_argument(
        "--configs", nargs="+", default=None, help=f"Study configs, one section each (default: {STUDY_CONFIGS}/*.yaml)."
    )
    _flag(parser, "results_dir", default=str(DEFAULT_RESULTS_DIR), help="Folder of the run records.")
    parser.add_argument("--output", default="docs/results.md", help="The markdown report; results.json goes beside it.")
    _flag(parser, "img_dir", default="docs/img", help="Folder of the PNG plots.")
    _flag(
        parser,
        "cache_dir",
        default=str(DEFAULT_CACHE_DIR),
        help="Disk cache of what the report derives from each run's dev logits (not versioned).",
    )
    _flag(parser, "no_cache", action="store_true", help="Derive every run again, reading and writing no cache.")
    return parser.parse_args(argv)


def report_results(argv: list[str] | None = None) -> int:
    """`scripts/report_results.py`: 0 when written, 2 on a bad config or a run without its dev logits."""
    args = report_results_arguments(argv)
    configs = args.configs or sorted(str(path) for path in STUDY_CONFIGS.glob("*.yaml"))
    try:
        cache_dir = None if args.no_cache else args.cache_dir
        written = write_report(configs, args.results_dir, args.output, args.img_dir, cache_dir)
    except (StudyConfigError, MissingDevOutputsError) as error:
        print(f"report_results.py: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0

"""Aggregate the loss study's run records into docs/results.md, docs/results.json and plots.

    python scripts/report_results.py
    python scripts/report_results.py --results-dir results/runs --output docs/results.md --img-dir docs/img

Each study config is one section of the report (default: every `configs/study/*.yaml`, sorted).
See `ner_imbalance.study.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ner_imbalance.study.grid import StudyConfigError
from ner_imbalance.study.records import DEFAULT_RESULTS_DIR, MissingDevOutputsError
from ner_imbalance.study.report import write_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", default=None, help="Study configs, one section each (default: configs/study/*.yaml)."
    )
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR), help="Folder of the run records.")
    parser.add_argument("--output", default="docs/results.md", help="The markdown report; results.json goes beside it.")
    parser.add_argument("--img-dir", default="docs/img", help="Folder of the PNG plots.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = args.configs or sorted(str(path) for path in Path("configs/study").glob("*.yaml"))
    try:
        written = write_report(configs, args.results_dir, args.output, args.img_dir)
    except (StudyConfigError, MissingDevOutputsError) as error:
        print(f"report_results.py: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

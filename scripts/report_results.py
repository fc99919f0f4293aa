"""Aggregate the loss study's run records into docs/results.md, docs/results.json and plots.

    python scripts/report_results.py
    python scripts/report_results.py --results_dir results/runs --output docs/results.md --img_dir docs/img

Each study config is one section of the report (default: every `configs/study/*.yaml`, sorted).
The command is `ner_imbalance.study.commands.report_results`; the report, `ner_imbalance.study.report`.
"""

import sys

from ner_imbalance.study.commands import report_results

if __name__ == "__main__":
    sys.exit(report_results())

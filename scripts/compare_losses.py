"""Run the loss study: losses x hyperparameters x seeds x datasets, one JSON record per finished run.

    python scripts/compare_losses.py configs/study/*.yaml --dry_run
    python scripts/compare_losses.py configs/study/01_sweep_wnut17.yaml --max_runs 4

Runs happen in this process through the code path of `train_ner.py`. A rerun skips finished
records, so an interrupted study resumes; configs run in the order given (the sweep before the
configs that take its winners with `from_sweep: best`). The command is
`ner_imbalance.study.commands.compare_losses`; the runs, `ner_imbalance.study.runner`.
"""

import sys

from ner_imbalance.study.commands import compare_losses

if __name__ == "__main__":
    sys.exit(compare_losses())

"""Search the learning rate and the loss's hyperparameters (optuna): `ner-tune` from the repository.

    python scripts/tune_ner.py --loss focal --n_trials 20 --output_dir outputs/tune_focal

The command is `ner_imbalance.cli.tune` (`ner-tune --help` lists its flags and says more); this file
keeps the `python scripts/tune_ner.py` and `accelerate launch scripts/tune_ner.py` spellings working.
"""

from ner_imbalance.cli.tune import run

if __name__ == "__main__":
    run()

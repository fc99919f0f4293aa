"""One fine-tuning run: its facts computed once (`PreparedRun`), `ImbalanceTrainer`, and what a run writes.

`prepared_run` (`PreparedRun`), `run` (`prepare_run`: every check, no model; `execute_run`: the
work; `run_experiment`: both), `trainer` (`ImbalanceTrainer`: any loss of `ner_imbalance.losses`
inside `transformers.Trainer`), `corpus` (a run's words and windows), `metrics` (the Trainer's
word-level `compute_metrics`), `predictions` (a run's splits predicted, decoded, calibrated and
scored), `output_folder` (the folder policy), `model_card`, and `tuning` (hyperparameter search
with optuna).
"""

from ner_imbalance.training.prepared_run import PreparedRun
from ner_imbalance.training.run import build_trainer, execute_run, prepare_run, run_experiment
from ner_imbalance.training.trainer import ImbalanceTrainer

__all__ = ["ImbalanceTrainer", "PreparedRun", "build_trainer", "execute_run", "prepare_run", "run_experiment"]

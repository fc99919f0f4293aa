"""Search the learning rate and the loss's hyperparameters for the best dev entity F1 (optuna).

    ner-tune --loss focal --n_trials 20 --train_file train.conll \\
        --validation_file dev.conll --output_dir outputs/tune_focal

Every `ner-train` flag works (they fix what is not searched). The study is kept in
OUTPUT_DIR/optuna.db: the same command again resumes it up to --n_trials. At the end the trials
are printed and written to OUTPUT_DIR/trials.csv and trials.md. Needs
`pip install 'ner_imbalance[tune]'`.

A bad flag, or an OUTPUT_DIR holding a study of other data, model or loss (`study.json`), is one
line on stderr and exit status 2. SIGTERM or Ctrl-C during a trial stops it after the current step
(exit 143 or 130; a second Ctrl-C at once), without a traceback: the same command again resumes
the study, and optuna retries the trial that was running.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import transformers

from ner_imbalance.cli.common import EXIT_SIGINT, refuse
from ner_imbalance.config.arguments import OneLineHfArgumentParser, parse_arguments
from ner_imbalance.training.tuning import TuningArguments, format_trials, run_search
from ner_imbalance.utils.command_line import exit_with
from ner_imbalance.utils.extras import MissingExtraError

PROGRAM = "ner-tune"


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the search and print its trials; the exit status (2: bad input, 130: Ctrl-C)."""
    try:
        return _tune(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted (Ctrl-C): run the same command again to resume the study", file=sys.stderr)
        return EXIT_SIGINT


def _tune(argv: list[str]) -> int:
    try:
        tuning_args, rest = OneLineHfArgumentParser(TuningArguments, allow_abbrev=False).parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
        model_args, data_args, loss_args, training_args = parse_arguments(rest)
    except (ValueError, FileNotFoundError) as error:
        return refuse(PROGRAM, str(error))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    try:
        result = run_search(model_args, data_args, loss_args, training_args, tuning_args)
    except (ValueError, MissingExtraError) as error:
        return refuse(PROGRAM, str(error))
    print(format_trials(result.trials))
    flags = " ".join(f"--{name} {value}" for name, value in result.best_params.items())
    print(f"\nbest: trial {result.best_trial}, dev F1 {100 * result.best_value:.2f}; retrain with")
    print(f"  ner-train --loss {loss_args.loss} {flags} <the same data and model flags>")
    print(f"study: {result.study_path}")
    return 0


def run() -> NoReturn:
    """The `ner-tune` command."""
    exit_with(main)


if __name__ == "__main__":
    run()
